"""A relay replica as its own process, for the crash tests in test_relay.py: drains the outbox
to a (fake) Slack in a loop, on the real clock, until no row is pending or sending.

    python -m tests.handlers.slack.relay_worker --database-url URL --api-url URL \
        [--timeout 0.3] [--lease 3] [--max-backoff 4] [--pace 1] [--max-seconds 50]

Exits 0 once the outbox is finished, 2 if --max-seconds passes first.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bot.clock import SystemClock
from handlers.slack.relay import SlackRelay
from storage.db import create_db_engine
from storage.models import OutboxMessage, OutboxStatus


def unfinished(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(
            select(func.count()).select_from(OutboxMessage).where(
                col(OutboxMessage.status).in_([OutboxStatus.pending, OutboxStatus.sending]))
        ).one())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--timeout", type=float, default=0.3, help="Slack client timeout (s)")
    parser.add_argument("--lease", type=float, default=3.0, help="claim lease (s)")
    parser.add_argument("--max-backoff", type=float, default=4.0,
                        help="back-off cap (s): short, so that a test's tail stays short")
    parser.add_argument("--pace", type=float, default=1.0,
                        help="seconds between posts into one conversation (Slack: ~1)")
    parser.add_argument("--max-seconds", type=float, default=50.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")

    # The client the way the app builds it (handlers.slack.app.web_client), with a short timeout.
    client = WebClient(token="xoxb-test-token", base_url=args.api_url, timeout=args.timeout)
    client.retry_handlers.extend([
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ])
    engine = create_db_engine(args.database_url)
    relay = SlackRelay(engine=engine, client=client, clock=SystemClock(),
                       lease=timedelta(seconds=args.lease),
                       max_backoff=timedelta(seconds=args.max_backoff), pace=args.pace)
    deadline = time.monotonic() + args.max_seconds
    try:
        while time.monotonic() < deadline:
            relay.drain()
            if unfinished(engine) == 0:
                return 0
            time.sleep(0.05)
        return 2
    finally:
        engine.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
