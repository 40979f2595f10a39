"""`noticebot` command line."""

from __future__ import annotations

import getpass
import json
import logging
import signal
import socket as sockets
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from bot.app import build_core, load_roster_text
from bot.core.context import Ctx, acting_from, unit_of_work
from bot.core.service import Core
from bot.messages import Outcome
from bot.ops import metrics
from bot.ops.fips import FipsError, require_fips
from bot.ops.logs import configure_logging
from bot.ops.probes import Readiness
from bot.ops.siem import install_siem, uninstall_siem
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
from bot.records.keys import rotate_all
from bot.records.retention import RecordType, Schedule, ScheduleError, load_schedule
from bot.roster import RosterError, record_training
from bot.schedule.runner import start_scheduler
from config.settings import LogFormat, Settings, SettingsError, load_settings, safe_url
from handlers.slack.relay import SlackRelay
from storage import tree
from storage.db import DatabaseMissing, create_db_engine, open_existing, sqlite_path, upgrade
from storage.models import Case
from storage.vault import Vault, VaultError, generate_key


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    if settings.require_fips:
        try:
            require_fips()
        except FipsError as exc:
            raise click.ClickException(str(exc)) from None
    # One-shot commands: their output is on stdout, so their log lines (and SIEM lines) go to
    # stderr.
    configure_logging(settings, stream=sys.stderr, log_format=_log_format(), quiet=True)
    _stream_to_siem(settings, sys.stderr)
    return settings


def _service_settings() -> Settings:
    """Settings for the long-running processes (serve, worker, socket): logs on stdout."""
    settings = _settings()
    configure_logging(settings, stream=sys.stdout, log_format=_log_format())
    _stream_to_siem(settings, None)
    return settings


def _stream_to_siem(settings: Settings, stream: TextIO | None) -> None:
    try:
        install_siem(settings, stream=stream)
    except OSError as exc:
        raise click.ClickException(f"NOTICEBOT_SIEM_SYSLOG_ADDRESS: cannot open syslog at "
                                   f"{settings.siem_syslog_address} ({exc})") from None
    click.get_current_context().call_on_close(uninstall_siem)


def _log_format() -> LogFormat | None:
    chosen = click.get_current_context().find_root().params.get("log_format")
    return LogFormat(chosen) if chosen else None


log = logging.getLogger("noticebot")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _engine(url: str, *, reads_only: bool = False, existing: bool = False) -> Engine:
    """An engine disposed when the command ends, so no pooled connection outlives it.
    `existing`: the database must already exist at the newest schema (see `open_existing`);
    otherwise a SQLite file is created as needed, and its path is said on stderr."""
    if existing:
        try:
            engine = open_existing(url, reads_only=reads_only)
        except DatabaseMissing as exc:
            raise click.ClickException(str(exc)) from None
    else:
        path = sqlite_path(url)
        if path is not None:
            click.echo(f"database: SQLite file {path}", err=True)
        engine = create_db_engine(url, reads_only=reads_only)
        try:
            engine.connect().close()
        except SQLAlchemyError as exc:
            engine.dispose()
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise click.ClickException(f"cannot open the database at {safe_url(url)} "
                                       f"(NOTICEBOT_DATABASE_URL): {reason}") from None
    click.get_current_context().call_on_close(engine.dispose)
    return engine


def _core(*, existing: bool = False) -> Core:
    """`existing`: for commands that act on an existing record (never create a database)."""
    settings = _settings()
    return build_core(settings, engine=_engine(settings.database_url, existing=existing),
                      migrate=not existing)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="noticebot")
@click.option("--log-format", type=click.Choice([f.value for f in LogFormat]),
              help="Log lines as JSON (for collectors) or text (for people); overrides "
                   "NOTICEBOT_LOG_FORMAT.")
def main(log_format: str | None) -> None:
    """noticebot: the ICE Directive 15006.1 checklist for INTERPOL notices, in chat."""
    # Every record entry a command makes names the account and host that ran it.
    click.get_current_context().with_resource(acting_from(_origin()))


def _origin() -> dict[str, str]:
    return {"os_user": getpass.getuser(), "host": sockets.gethostname()}


@main.command()
@click.option("--as", "user", metavar="USER", help="Start as this roster user.")
@click.option("--sample/--no-sample", default=None,
              help="Load the bundled sample roster into an empty database without asking.")
def shell(user: str | None, sample: bool | None) -> None:
    """The local console: run the whole workflow in the terminal (SQLite by default)."""
    from handlers.console import run_console

    core = _core()
    sys.exit(run_console(core, stdin=sys.stdin, stdout=sys.stdout,
                         interactive=sys.stdin.isatty(), user=user, load_sample=sample))


@main.command()
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option("--threads", default=8, show_default=True, help="Threads per worker.")
def serve(workers: int, threads: int) -> None:
    """HTTP mode for Slack: POST /slack/events, GET /livez, /readyz and /metrics on
    NOTICEBOT_PORT."""
    from handlers.slack.app import (
        SlackSettingsError,
        check_slack,
        create_app,
        require_slack_settings,
    )
    from handlers.slack.server import GunicornServer, wsgi_app

    settings = _service_settings()
    try:
        require_slack_settings(settings)
        check_slack(settings)  # once, here: a bad token is one line, not a worker's traceback
    except SlackSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    upgrade(_engine(settings.database_url))
    # Before the fork: the workers' counters go to files that any worker's /metrics adds up
    # (in PROMETHEUS_MULTIPROC_DIR, or a temporary folder removed at exit).
    given = metrics.multiprocess_dir()
    metrics_dir = metrics.enable_multiprocess(given)
    if given is None:
        click.get_current_context().call_on_close(
            lambda: metrics.remove_multiprocess_dir(metrics_dir))
    schedulers: list[Any] = []
    relays: list[SlackRelay] = []

    def factory() -> Any:
        core = build_core(settings, migrate=False)
        app = create_app(settings, core, verify_token=False)
        relay = SlackRelay(engine=core.engine, client=app.client, clock=core.clock)
        relays.append(relay)
        readiness = Readiness(core.engine)
        # Per worker, after the fork.
        schedulers.append(start_scheduler(core, deliver=relay.drain, nudge=relay.nudge,
                                          readiness=readiness))
        return wsgi_app(app, core.engine, core, readiness)

    def stop_background() -> None:
        for relay in relays:
            relay.stop()
        for scheduler in schedulers:
            scheduler.shutdown(wait=True)
        log.info("worker stopped")

    GunicornServer(factory, port=settings.port, workers=workers, threads=threads,
                   on_exit=stop_background).run()


@main.command()
def socket() -> None:
    """Socket Mode for development (needs SLACK_APP_TOKEN; no public URL)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from handlers.slack.app import SlackSettingsError, create_app, require_slack_settings

    settings = _service_settings()
    try:
        require_slack_settings(settings, socket_mode=True)
        core = build_core(settings, engine=_engine(settings.database_url))
        app = create_app(settings, core)
    except SlackSettingsError as exc:
        raise click.ClickException(str(exc)) from None
    relay = SlackRelay(engine=core.engine, client=app.client, clock=core.clock)
    scheduler = start_scheduler(core, deliver=relay.drain, nudge=relay.nudge)
    try:
        SocketModeHandler(  # type: ignore[no-untyped-call]
            app, settings.slack_app_token.get_secret_value()).start()
    finally:
        scheduler.shutdown(wait=True)


@main.command()
@click.option("--metrics-port", default=9300, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the worker's /metrics, /livez and /readyz (0: none).")
def worker(metrics_port: int) -> None:
    """Run only the sweeps (reminders, escalations, digests, USNCB and Slack delivery), for
    deployments that separate them from `serve`. Stops cleanly on SIGTERM."""
    settings = _service_settings()
    core = build_core(settings, engine=_engine(settings.database_url))
    deliver, nudge, relay = None, None, None
    if settings.slack_bot_token.get_secret_value():
        from handlers.slack.app import SlackSettingsError, check_slack, web_client

        client = web_client(settings)
        try:
            check_slack(settings, client)
        except SlackSettingsError as exc:
            raise click.ClickException(str(exc)) from None
        relay = SlackRelay(engine=core.engine, client=client, clock=core.clock)
        deliver, nudge = relay.drain, relay.nudge
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    readiness = Readiness(core.engine)
    scheduler = start_scheduler(core, deliver=deliver, nudge=nudge, readiness=readiness)
    server = None
    if metrics_port:
        from handlers.ops import serve_ops

        try:
            server, _ = serve_ops(port=metrics_port, readiness=readiness, clock=core.clock)
        except OSError as exc:
            scheduler.shutdown(wait=True)
            raise click.ClickException(f"cannot serve metrics on --metrics-port "
                                       f"{metrics_port}: {exc.strerror or exc}") from None
    log.info("worker running: sweeps every %ss%s%s", settings.sweep_seconds,
             ", Slack relay on" if deliver else "",
             f", /metrics on port {metrics_port}" if metrics_port else "")
    stop.wait()
    log.info("worker stopping")
    if server is not None:
        server.shutdown()
    if relay is not None:
        relay.stop()
    scheduler.shutdown(wait=True)
    log.info("worker stopped")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (safe to run repeatedly)."""
    settings = _settings()
    upgrade(_engine(settings.database_url))
    click.echo("database is up to date")


@main.group()
def roster() -> None:
    """People, roles, AORs and approver chains."""


@roster.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def roster_import(file: Path) -> None:
    """Import a roster TOML file (see the README). All or nothing; re-importing is idempotent."""
    core = _core()
    try:
        report = load_roster_text(core, file.read_text("utf-8"), actor=_actor(),
                                  source=str(file))
    except RosterError as exc:
        raise click.ClickException(str(exc)) from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{file} is not UTF-8 text") from None
    click.echo(f"roster imported: {len(report.changes)} change(s)")
    for change in report.changes:
        click.echo(f"  {change}")


@main.group()
def training() -> None:
    """Mandatory training completions (§5.3)."""


@training.command("record")
@click.argument("user")
@click.argument("completed_on", metavar="DATE", type=click.DateTime(formats=["%Y-%m-%d"]))
def training_record(user: str, completed_on: datetime) -> None:
    """Record that USER completed the mandatory training on DATE (YYYY-MM-DD)."""
    core = _core(existing=True)
    with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                      actor=_actor()) as ctx:
        ctx.record("admin", "command.training_record", user=user,
                   completed_on=completed_on.date())
        try:
            added = record_training(ctx, user.upper(), completed_on.date(), source="cli")
        except RosterError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo("recorded" if added else "already on record")


@main.group()
def keys() -> None:
    """Encryption keys for subject details and record content at rest."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new key; put it FIRST in NOTICEBOT_ENCRYPTION_KEYS, keep the old ones after it."""
    click.echo(generate_key())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt everything with the newest key (the first in NOTICEBOT_ENCRYPTION_KEYS)."""
    core = _core(existing=True)
    vault = Vault(core.settings.vault_keys)
    if not vault.enabled:
        raise click.ClickException("NOTICEBOT_ENCRYPTION_KEYS is not set")
    try:
        counts = rotate_all(core.engine, vault)
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    core.act(actor=_actor(), action="keys.rotated", handler=lambda ctx: Outcome(),
             rewritten=counts)
    click.echo("re-encrypted: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@keys.group("checkpoint-key")
def checkpoint_key() -> None:
    """The Ed25519 key that signs record checkpoints (kept outside the database)."""


@checkpoint_key.command("generate")
@click.option("--out", "path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to create for the private key (never overwritten); point "
                   "NOTICEBOT_CHECKPOINT_KEY_FILE at it.")
def checkpoint_key_generate(path: Path) -> None:
    """Make a signing key; print the public key records officers keep to check checkpoints."""
    try:
        public = checkpoints.generate_key_file(path)
    except checkpoints.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"private key written to {path} (owner-only); keep it out of the database")
    click.echo(f"public key:  {checkpoints.public_text(public)}")
    click.echo(f"fingerprint: {checkpoints.fingerprint(public)}")


@checkpoint_key.command("hand-over")
@click.option("--to", "new_key", required=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The new key's file (from `keys checkpoint-key generate`).")
def checkpoint_key_hand_over(new_key: Path) -> None:
    """Rotate the checkpoint key: sign a last checkpoint with the current key, the current key's
    hand-over to NEW_KEY, and the first checkpoint under NEW_KEY (see README)."""
    core = _core(existing=True)
    try:
        last, handover, first = checkpoints.hand_over(
            engine=core.engine, settings=core.settings, clock=core.clock, new_key_file=new_key)
    except checkpoints.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"key {handover.old} handed over to {handover.new} after "
               f"{last.checkpoint.short()}; {first.checkpoint.short()} signed by the new key")
    click.echo(f"now set NOTICEBOT_CHECKPOINT_KEY_FILE={new_key} and keep both public keys in "
               f"NOTICEBOT_CHECKPOINT_PUBLIC_KEYS (new: {handover.public})")


@checkpoint_key.command("show")
def checkpoint_key_show() -> None:
    """Print the public key (and fingerprint) of NOTICEBOT_CHECKPOINT_KEY_FILE, to hand out."""
    try:
        public = checkpoints.load_private(_settings()).public_key()
    except checkpoints.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"public key:  {checkpoints.public_text(public)}")
    click.echo(f"fingerprint: {checkpoints.fingerprint(public)}")


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
    core = _core(existing=True)
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
        for case in ctx.session.exec(select(Case).where(Case.stage == "closed")
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
    core = _core(existing=True)
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
    core = _core(existing=True)
    _done(core.act(actor=user.upper(), action="records.hold_lift", hold_id=hold_id,
                   handler=lambda ctx: (lift_hold(ctx, hold_id, reason=reason), Outcome())[1]))
    click.echo(f"hold {hold_id} lifted")


@records_hold.command("list")
@AS_USER
def records_hold_list(user: str) -> None:
    """Active holds."""
    core = _core(existing=True)
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
    core = _core(existing=True)
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
    core = _core(existing=True)
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
    core = _core(existing=True)
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
    settings = _settings()
    try:
        newest = checkpoints.newest_checkpoint(settings)
        if newest is None:
            raise checkpoints.CheckpointError("no signed checkpoint yet (noticebot audit "
                                              "checkpoint)")
        with Session(_engine(settings.database_url, reads_only=True,
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
    settings = _settings()
    engine = _engine(settings.database_url, reads_only=True, existing=True)
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
    core = _core(existing=True)
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
