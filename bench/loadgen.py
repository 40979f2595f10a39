"""An open-loop load generator for Slack's request endpoint: `python -m bench.loadgen IN OUT`.

IN is a JSON plan: {"url", "secret", "requests": [{"at", "kind", "tag", "body"}, ...]}, `at`
in seconds from the start. Each request is sent at start + at whether or not earlier ones have
been answered (a fixed arrival rate: a slow server cannot slow the generator down and so hide
its own latency), signed the way Slack signs, from one asyncio loop over httpx. Latency is
measured from the planned send time, so lateness of the generator itself counts against the
server rather than vanishing. OUT gets one row per request: the plan's fields (without the body)
plus `planned`, `sent`, `done` (time.monotonic(), comparable with other processes' on Linux),
`status` (0 when no answer came) and `error`.

It runs in its own process so that neither the servers nor the fake Slack share its GIL."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.handlers.slack.slack_requests import signed_headers

EVENTS_PATH = "/slack/events"
START_DELAY = 0.5  # seconds between signing everything and the first planned send


async def _send(client: httpx.AsyncClient, request: dict[str, Any], headers: dict[str, str],
                planned: float) -> dict[str, Any]:
    row = {k: v for k, v in request.items() if k != "body"}
    sent = time.monotonic()
    try:
        response = await client.post(EVENTS_PATH, content=request["body"].encode(),
                                     headers=headers)
        status, error = response.status_code, ""
    except httpx.HTTPError as exc:
        status, error = 0, type(exc).__name__
    return {**row, "planned": planned, "sent": sent, "done": time.monotonic(),
            "status": status, "error": error}


async def run_plan(plan: dict[str, Any]) -> list[dict[str, Any]]:
    requests = sorted(plan["requests"], key=lambda r: float(r["at"]))
    headers = [signed_headers(plan["secret"], r["body"]) for r in requests]
    # No pool limit: a request must never wait in the client for a free connection.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=plan["url"], timeout=30, limits=limits) as client:
        start = time.monotonic() + START_DELAY
        tasks = []
        for request, signed in zip(requests, headers, strict=True):
            planned = start + float(request["at"])
            delay = planned - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(client, request, signed, planned)))
        return list(await asyncio.gather(*tasks))


def main(argv: list[str] | None = None) -> None:
    source, target = (argv if argv is not None else sys.argv[1:])[:2]
    plan = json.loads(Path(source).read_text())
    rows = asyncio.run(run_plan(plan))
    Path(target).write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
