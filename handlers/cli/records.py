"""Records management (§6): schedule, holds, disposition, audit and export."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.core.context import Ctx
from bot.core.service import Core
from bot.messages import Outcome
from bot.records import checkpoints
from bot.records.disposition import dispose, eligible
from bot.records.export import ExportError, export_records
from bot.records.heads import HeadsError, publish_head, verify_against
from bot.records.holds import (
    active_holds,
    holds_case,
    lift_hold,
    place_hold,
    require_records_officer,
)
from bot.records.retention import RecordType, Schedule, ScheduleError, load_schedule
from handlers.cli.root import (
    cli_core,
    cli_engine,
    main,
)
from handlers.startup import cli_settings
from storage import tree
from storage.models import Case, Stage
from storage.vault import Vault

AS_USER = click.option("--as", "user", metavar="USER", required=True,
                       help="Your roster user id; the records role is checked.")


def _schedule(core: Core) -> Schedule:
    try:
        return load_schedule(core.settings.retention_file)
    except ScheduleError as exc:
        raise click.ClickException(str(exc)) from None


def _done(outcome: Outcome) -> None:
    if not outcome.ok:
        raise click.ClickException(outcome.refusal or "; ".join(
            f"{k}: {v}" for k, v in outcome.errors.items()))


@main.group()
def records() -> None:
    """Records management (§6): schedule, litigation holds, disposition."""


@records.command("schedule")
@AS_USER
def records_schedule(user: str) -> None:
    """Show the retention schedule and when each closed case becomes eligible."""
    core = cli_core(existing=True)
    schedule = _schedule(core)
    lines: list[str] = []

    def handle(ctx: Ctx) -> Outcome:
        require_records_officer(ctx)
        for record_type in RecordType:
            item = schedule.item_for(record_type)
            lines.append(f"{record_type.value:16} " + (
                item.describe() if item else "unscheduled: kept indefinitely"))
        item = schedule.item_for(RecordType.case_file)
        holds = active_holds(ctx)
        for case in ctx.session.exec(select(Case).where(Case.stage == Stage.closed)
                                     .order_by(col(Case.closed_at))).all():
            assert case.closed_at is not None
            held = [h.id for h in holds if holds_case(h, case)]
            when = item.eligible_on(case.closed_at.date()).isoformat() if item else "never"
            state = "disposed" if case.disposed_at else (
                f"HELD ({', '.join(map(str, held))})" if held else f"eligible {when}")
            lines.append(f"  {case.id:14} closed {case.closed_at.date()}  {state}")
        ctx.record("read", "records.schedule_viewed")
        return Outcome()

    _done(core.act(actor=user.upper(), action="records.schedule", handler=handle))
    click.echo("\n".join(lines))


@records.group("hold")
def records_hold() -> None:
    """Litigation holds."""


@records_hold.command("place")
@AS_USER
@click.option("--matter", required=True, help="Matter name.")
@click.option("--authority", required=True, help="Who ordered the hold (court, counsel...).")
@click.option("--reason", required=True)
@click.option("--case", "case_id", metavar="ID")
@click.option("--aor", "aor_id")
@click.option("--person", metavar="USER")
@click.option("--from", "date_from", type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--to", "date_to", type=click.DateTime(formats=["%Y-%m-%d"]))
def records_hold_place(user: str, matter: str, authority: str, reason: str,
                       case_id: str | None, aor_id: str | None, person: str | None,
                       date_from: datetime | None, date_to: datetime | None) -> None:
    """Place a hold on a case, or on everything matching AOR / person / dates."""
    core = cli_core(existing=True)
    placed: list[int] = []

    def handle(ctx: Ctx) -> Outcome:
        hold = place_hold(ctx, matter=matter, authority=authority, reason=reason,
                          case_id=case_id.upper() if case_id else None, aor_id=aor_id,
                          person=person.upper() if person else None,
                          date_from=date_from.date() if date_from else None,
                          date_to=date_to.date() if date_to else None)
        assert hold.id is not None
        placed.append(hold.id)
        return Outcome()

    _done(core.act(actor=user.upper(), action="records.hold_place", handler=handle,
                   case_id=case_id.upper() if case_id else None))
    click.echo(f"hold {placed[0]} placed")


@records_hold.command("lift")
@AS_USER
@click.argument("hold_id", type=int)
@click.option("--reason", required=True)
def records_hold_lift(user: str, hold_id: int, reason: str) -> None:
    """Lift a hold (the records under it become disposable again on schedule)."""
    core = cli_core(existing=True)
    _done(core.act(actor=user.upper(), action="records.hold_lift", hold_id=hold_id,
                   handler=lambda ctx: (lift_hold(ctx, hold_id, reason=reason), Outcome())[1]))
    click.echo(f"hold {hold_id} lifted")


@records_hold.command("list")
@AS_USER
def records_hold_list(user: str) -> None:
    """Active holds."""
    core = cli_core(existing=True)
    lines: list[str] = []

    def handle(ctx: Ctx) -> Outcome:
        require_records_officer(ctx)
        for h in active_holds(ctx):
            scope = ", ".join(f"{k}={v}" for k, v in (
                ("case", h.case_id), ("aor", h.aor_id), ("person", h.person),
                ("from", h.date_from), ("to", h.date_to)) if v)
            lines.append(f"{h.id:4}  {h.matter}  [{scope}]  by {h.placed_by} "
                         f"{h.placed_at:%Y-%m-%d}")
        ctx.record("read", "records.holds_viewed")
        return Outcome()

    _done(core.act(actor=user.upper(), action="records.hold_list", handler=handle))
    click.echo("\n".join(lines) or "no active holds")


@records.command("disposition")
@AS_USER
@click.option("--list", "show", is_flag=True, help="List what is eligible today.")
@click.option("--approve", is_flag=True, help="Dispose of the eligible records (or REFs).")
@click.argument("refs", nargs=-1)
def records_disposition(user: str, show: bool, approve: bool, refs: tuple[str, ...]) -> None:
    """List eligible records, or approve their disposition (records officers)."""
    if show == approve:
        raise click.UsageError("give exactly one of --list or --approve")
    core = cli_core(existing=True)
    schedule = _schedule(core)
    lines: list[str] = []

    def handle(ctx: Ctx) -> Outcome:
        if show:
            require_records_officer(ctx)
            for e in eligible(ctx, schedule):
                lines.append(f"{e.record_ref:20} {e.record_type.value:12} eligible "
                             f"{e.eligible_on}  {e.item} ({e.authority})")
            ctx.record("read", "records.disposition_listed", count=len(lines))
            return Outcome()
        for log in dispose(ctx, schedule, [r.upper() if not r.startswith(("entry:", "training:"))
                                           else r for r in refs] or None):
            lines.append(f"disposed {log.record_ref} ({log.record_type}) under {log.schedule_item}")
        return Outcome()

    _done(core.act(actor=user.upper(), action="records.disposition", handler=handle,
                   approve=approve, refs=list(refs)))
    click.echo("\n".join(lines) or "nothing eligible")


@main.group()
def audit() -> None:
    """The tamper-evident interaction record."""


@audit.command("publish-head")
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File (outside the database) the head is appended to.")
def audit_publish_head(target: Path) -> None:
    """Append the chain's head (seq and hash) to a file kept outside the database."""
    core = cli_core(existing=True)
    if core.settings.checkpoint_key_file:
        raise click.ClickException("a checkpoint key is set: use `noticebot audit checkpoint` "
                                   "(verification refuses unsigned heads then)")
    try:
        head = publish_head(engine=core.engine, settings=core.settings, clock=core.clock,
                            target=target)
    except HeadsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"published head {head.seq} {head.hash} to {target}")


@audit.command("checkpoint")
@click.option("--to", "target", type=click.Path(dir_okay=False, path_type=Path),
              help="Heads file to append to (default: NOTICEBOT_HEADS_FILE).")
def audit_checkpoint(target: Path | None) -> None:
    """Verify from the last checkpoint, then sign a new one (tree size, root, time, previous)
    and append it to the heads file."""
    core = cli_core(existing=True)
    try:
        signed = checkpoints.make_checkpoint(engine=core.engine, settings=core.settings,
                                             clock=core.clock, target=target)
    except checkpoints.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"signed {signed.checkpoint.short()} with key {signed.key}")


@audit.command("prove")
@click.argument("seq", type=click.IntRange(min=1))
def audit_prove(seq: int) -> None:
    """Print entry SEQ's inclusion proof against the newest signed checkpoint, checked, and
    whether its content is still there or was disposed of (under which item, when, by whom)."""
    settings = cli_settings()
    try:
        newest = checkpoints.newest_checkpoint(settings)
        if newest is None:
            raise checkpoints.CheckpointError("no signed checkpoint yet (noticebot audit "
                                              "checkpoint)")
        with Session(cli_engine(settings.database_url, reads_only=True,
                             existing=True)) as session:
            proof = checkpoints.prove(session, seq, newest)
    except (checkpoints.CheckpointError, tree.TreeError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"seq": proof.seq, "tree_size": newest.checkpoint.size,
                           "root": newest.checkpoint.root, "leaf": proof.leaf,
                           "path": proof.path, "verified": proof.verified,
                           "content": proof.content}, indent=2))
    if not proof.verified:
        sys.exit(1)


@audit.command("verify")
@click.option("--against", "heads_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also check every head published in this file is still in the chain.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Processes verifying ranges of the chain side by side (default: one per "
                   "CPU for chains of 100,000 entries or more, else 1).")
@click.option("--full", is_flag=True,
              help="Walk every entry and recompute the whole tree, not only what came after "
                   "the newest signed checkpoint.")
@click.option("--heads", "more_heads", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Another copy of the heads file (another publisher's, say; repeatable): its "
                   "checkpoints must agree with the record and with every other checkpoint.")
def audit_verify(heads_file: Path | None, workers: int | None, full: bool,
                 more_heads: tuple[Path, ...]) -> None:
    """Verify the record: by default from the newest signed checkpoint in the heads file (its
    signature, the tree's consistency with it, the entries after it); with --full, or without
    a checkpoint, the whole chain. Exit 1 at the first problem."""
    settings = cli_settings()
    engine = cli_engine(settings.database_url, reads_only=True, existing=True)
    source = heads_file or (Path(settings.heads_file) if settings.heads_file else None)
    sources: dict[str, list[checkpoints.Signed]] = {}
    for path in (source, *more_heads):
        try:
            if path is not None:
                sources[str(path)] = checkpoints.read_checkpoints(
                    path, checkpoints.known_keys(settings))
        except checkpoints.CheckpointError as exc:
            click.echo(f"BROKEN: {path}: {exc}", err=True)
            sys.exit(1)
    signed = sources.get(str(source), [])
    if heads_file is not None:
        against = verify_against(engine=engine, settings=settings, heads_file=heads_file,
                                 workers=workers)
        if not against.ok:
            click.echo(f"BROKEN: {against.problem} ({against.checked} published heads "
                       "confirmed before it)", err=True)
            sys.exit(1)
        click.echo(f"OK: {against.checked} published heads match the chain")
    if signed and not full:
        with Session(engine) as session:
            tree_result = checkpoints.verify_incremental(
                session, Vault(settings.vault_keys), signed)
        if not tree_result.ok:
            where = f" at entry {tree_result.broken_seq}" if tree_result.broken_seq else ""
            click.echo(f"BROKEN{where}: {tree_result.problem} (checked from checkpoint "
                       f"{tree_result.since})", err=True)
            sys.exit(1)
        click.echo(f"OK: {tree_result.entries} entries verified since checkpoint "
                   f"{tree_result.since} ({len(signed)} signed checkpoints); tree size "
                   f"{tree_result.size}, root {tree_result.root}; head {tree_result.size} "
                   f"{tree_result.head_hash} (--full walks everything)")
        _cross_check(engine, sources, tree_result.size, more_heads)
        return
    # A read-only walk: on SQLite it must not hold the write lock while it runs.
    with Session(engine) as session:
        result, problem = checkpoints.verify_full(session, Vault(settings.vault_keys), signed,
                                                  workers=workers)
    if result.ok and problem is None:
        click.echo(f"OK: {result.entries} entries verified; head {result.head_seq} "
                   f"{result.head_hash}" + (f"; {len(signed)} signed checkpoints match"
                                            if signed else ""))
        _cross_check(engine, sources, result.head_seq, more_heads)
        return
    if problem is not None:
        click.echo(f"BROKEN: {problem}", err=True)
        sys.exit(1)
    click.echo(f"BROKEN at entry {result.broken_seq}: {result.problem} "
               f"({result.entries} entries verified before it)", err=True)
    sys.exit(1)


def _cross_check(engine: Engine, sources: dict[str, list[checkpoints.Signed]], size: int,
                 more_heads: tuple[Path, ...]) -> None:
    """With --heads: every checkpoint of every heads file against the verified tree."""
    if not more_heads:
        return
    with Session(engine) as session:
        problem = checkpoints.forks(session, sources, size, tree.root(session, size))
    if problem is not None:
        click.echo(f"BROKEN: {problem}", err=True)
        sys.exit(1)
    click.echo(f"OK: {sum(map(len, sources.values()))} checkpoints in {len(sources)} heads "
               "files agree with each other and with the record")


@main.command()
@AS_USER
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to create (must not exist or be empty).")
@click.option("--case", "case_id", metavar="ID", help="Only this case's file.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="From this day (UTC).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Through this day (UTC).")
@click.option("--redact", is_flag=True,
              help="Drop subject details, for sharing outside the records office.")
def export(user: str, out_dir: Path, case_id: str | None, since: datetime | None,
           until: datetime | None, redact: bool) -> None:
    """Export a case file or a date range: JSON Lines and CSV of the entries, a metadata CSV,
    the chain verification with its head hash, and a SHA-256 manifest (records officers)."""
    core = cli_core(existing=True)
    def allowed(ctx: Ctx) -> Outcome:
        require_records_officer(ctx)  # the export itself is recorded when it is complete
        return Outcome()

    _done(core.act(actor=user.upper(), action="records.export_requested", handler=allowed,
                   case_id=case_id.upper() if case_id else None, redact=redact))
    with click.progressbar(length=1, label="exporting", file=sys.stderr) as bar:
        def progress(done: int, total: int) -> None:
            bar.length = max(total, 1)
            bar.update(done - bar.pos)

        try:
            report = export_records(
                engine=core.engine, settings=core.settings, clock=core.clock,
                actor=user.upper(), out_dir=out_dir,
                case_id=case_id.upper() if case_id else None,
                since=since.date() if since else None, until=until.date() if until else None,
                redact=redact, progress=progress)
        except ExportError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"exported {report.entries} entries to {report.out_dir}"
               + (" (redacted)" if report.redacted else ""))
    click.echo(f"manifest sha256 {report.manifest_sha256}")
    if report.checkpoint_size is not None:
        click.echo(f"every entry carries its inclusion proof against signed checkpoint "
                   f"{report.checkpoint_size}; recipients check the folder with: python3 "
                   f"{report.out_dir / 'verify_export.py'} {report.out_dir} --public-key KEY")
    if not report.verified:
        click.echo("WARNING: the record chain does not verify; see verification.json", err=True)
