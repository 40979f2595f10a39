"""Administration: schema, roster, training, keys."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from bot.app import load_roster_text
from bot.core.context import unit_of_work
from bot.core.graph import GraphFormat, render
from bot.messages import Outcome
from bot.records import checkpoints
from bot.records.keys import rotate_all
from bot.roster import RosterError, record_training
from handlers.cli.root import (
    cli_actor,
    cli_core,
    cli_engine,
    main,
)
from handlers.startup import cli_settings
from storage.db import upgrade
from storage.vault import Vault, VaultError, generate_key


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (safe to run repeatedly)."""
    settings = cli_settings()
    upgrade(cli_engine(settings.database_url))
    click.echo("database is up to date")


@main.group()
def roster() -> None:
    """People, roles, AORs and approver chains."""


@roster.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def roster_import(file: Path) -> None:
    """Import a roster TOML file (see the README). All or nothing; re-importing is idempotent."""
    core = cli_core()
    try:
        report = load_roster_text(core, file.read_text("utf-8"), actor=cli_actor(),
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
    core = cli_core(existing=True)
    with unit_of_work(core.engine, clock=core.clock, settings=core.settings,
                      actor=cli_actor()) as ctx:
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
    core = cli_core(existing=True)
    vault = Vault(core.settings.vault_keys)
    if not vault.enabled:
        raise click.ClickException("NOTICEBOT_ENCRYPTION_KEYS is not set")
    try:
        counts = rotate_all(core.engine, vault)
    except VaultError as exc:
        raise click.ClickException(str(exc)) from None
    core.act(actor=cli_actor(), action="keys.rotated", handler=lambda ctx: Outcome(),
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
    core = cli_core(existing=True)
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
        public = checkpoints.load_private(cli_settings()).public_key()
    except checkpoints.CheckpointError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"public key:  {checkpoints.public_text(public)}")
    click.echo(f"fingerprint: {checkpoints.fingerprint(public)}")


@main.group()
def workflow() -> None:
    """The directive's steps, as the core declares them."""


@workflow.command("graph")
@click.option("--format", "fmt", type=click.Choice([f.value for f in GraphFormat]),
              default=GraphFormat.text.value, show_default=True)
def workflow_graph(fmt: str) -> None:
    """Print the stage graph: every stage, and which action leads where."""
    click.echo(render(GraphFormat(fmt)), nl=False)
