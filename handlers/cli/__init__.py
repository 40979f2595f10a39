"""The `noticebot` command line: the composition root (settings in, adapters and core wired).

Importing this package registers every command on `main`."""

from handlers.cli import admin, records, services
from handlers.cli.root import main
from handlers.teams.cli import teams

main.add_command(teams)

__all__ = ["admin", "main", "records", "services"]
