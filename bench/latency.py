"""P1, P2 and the memory half of P6: the real `noticebot serve` process under an open-loop load
of signed, mixed Slack requests, against the fake Slack on loopback; and, in the same run and
behind the same gunicorn setup, a bare Bolt app that only acks (bench/bare_app.py), driven with
the very same request plan.

- P1: ack latency (request planned → response read) of the commands and clicks, p50/p95/p99 of
  both servers and the ratio of the p50s; the bot's p99 against 100 ms.
- P2: each open-case modal submit, from its planned send until the fake Slack has received the
  case's root message, which starts its thread (correlated through the view id, which becomes
  the case's submission key, and the outbox id each post carries in its metadata). The first
  reply in the thread is reported beside it: the relay paces posts into one channel to Slack's
  one per second, so it follows the root by a second at least, whatever the bot does.
- P6: resident memory of the serve processes (gunicorn master + worker), sampled under load.

The load generator (bench/loadgen.py) and each server are separate processes; the fake Slack
runs in this one. Commands and clicks come at `rate` per second, the submits on top of that.
Clicks are real buttons of cases seeded beforehand, pressed by several roster users, so some
open forms, some change state once, and many are refused by the role or AOR checks and
recorded. The roster is the sample plus `OFFICES` small offices, each with its own channel and
officer. The clicked cases belong to some offices; the submits go round the others, as cases
from a whole region would, so that Slack's per-channel pace (not the bot) does not decide P2.

Memory is reported as the proportional set size (PSS) of gunicorn's master and worker summed:
the worker is forked from the master, so adding their RSS would count the pages they share
twice. Each one's peak RSS is in the details."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from bench.harness import BENCH_KEY, Bench, Result, percentile, rss_mb
from bot.app import build_core, load_roster_text, sample_roster_text
from bot.core.forms import open_case_form
from bot.core.service import Core
from bot.messages import ActionId
from handlers.slack.blocks import form_view
from storage.models import Case, OutboxMessage, OutboxStatus
from tests.handlers.slack.fake_slack import FakeSlack, start_fake_slack
from tests.handlers.slack.slack_requests import click_body, command_body, submit_body
from tests.helpers import (
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    OFFICER_LAPSED,
    SUBJECT,
    buttons,
    open_case,
    press,
    to_approval,
    to_documents,
    to_review,
)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret-0123456789"
CHANNEL = "C0HOUCASES"
CLICKERS = (OFFICER, FRO, DESIGNEE, MANAGER, OFFICER_LAPSED)
OFFICES = 20
SEEDED_OFFICES = 8  # offices 0-7 hold the clicked cases; the submits go round the others
OPEN_VALUES = {"notice_type": "red_notice", "intended_use": "enforcement",
               "extradition_pending": "no", **SUBJECT}
P1_RATIO, P1_P99_MS, P2_P99_MS, RSS_LIMIT_MB = 1.5, 100.0, 300.0, 200.0


@dataclass(frozen=True)
class Load:
    seconds: float
    rate: float  # commands and clicks per second
    submit_rate: float  # open-case submits per second, on top
    warmup_seconds: float
    warmup_rate: float


FULL = Load(seconds=60, rate=50, submit_rate=1, warmup_seconds=5, warmup_rate=10)
QUICK = Load(seconds=4, rate=20, submit_rate=1, warmup_seconds=1, warmup_rate=5)


def run(bench: Bench) -> list[Result]:
    results: list[Result] = []
    for kind in bench.kinds():
        with bench.database(kind) as url:
            results += _measure(bench, kind, url)
    return results


def _measure(bench: Bench, kind: str, url: str) -> list[Result]:
    load = QUICK if bench.quick else FULL
    fake = start_fake_slack()
    core = build_core(bench.settings(url))  # migrates, as serve would
    try:
        load_roster_text(core, _roster(datetime.now(UTC).date()), actor="bench",
                         source="bench")
        clicks = _seed(core)
        view = form_view(open_case_form(), metadata={"channel": CHANNEL})
        env = {**os.environ, "NOTICEBOT_DATABASE_URL": url, "NOTICEBOT_ENCRYPTION_KEYS": BENCH_KEY,
               "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET,
               "SLACK_API_URL": fake.api_url, "PYTHONPATH": str(ROOT)}
        plan = _plan(load, clicks=clicks, view=view, fake=fake, seed=7)
        warmup = _plan(Load(load.warmup_seconds, load.warmup_rate, 0, 0, 0), clicks=clicks,
                       view=view, fake=fake, seed=8)

        port = _free_port()
        with _server([sys.executable, "-m", "bench.bare_app", "--port", str(port)], env, port,
                     bench.workdir / f"bare-{kind}.log"):
            _drive(bench, port, _fresh(warmup, "W0"))
            bare = _drive(bench, port, _fresh(plan, "B0"))

        port = _free_port()
        env["NOTICEBOT_PORT"] = str(port)
        serve = [sys.executable, "-c", "from handlers.cli import main; main()", "serve"]
        with _server(serve, env, port, bench.workdir / f"serve-{kind}.log") as process:
            _wait_delivered(core.engine, timeout=60)  # the seeded cases' messages
            _drive(bench, port, _fresh(warmup, "W1"))
            with _sampling(process.pid) as memory:
                bot = _drive(bench, port, _fresh(plan, "S1"))
            p2 = _submit_latencies(bot, core.engine, fake, timeout=30)
    finally:
        core.engine.dispose()
        assert fake.server is not None
        fake.server.shutdown()
        fake.server.server_close()
    return _report(bench, kind, load, bot=bot, bare=bare, p2=p2, memory=memory)


# --- the workload --------------------------------------------------------------------------


def _officer(office: int) -> str:
    return f"U0BOFF{office:02d}"


def _roster(today: date) -> str:
    text = sample_roster_text(today)
    recent = (today - timedelta(days=30)).isoformat()
    for office in range(OFFICES):
        text += f"""
[[aor]]
id = "B{office:02d}"
name = "Bench office {office:02d}"
supervisors = ["{FRO}", "{DESIGNEE}"]
managers = ["{MANAGER}"]
channel = "C0BENCH{office:02d}"

[[person]]
user = "{_officer(office)}"
name = "Bench Officer {office:02d}"
email = "bench.officer.{office:02d}@example.gov"
roles = ["officer"]
aor = "B{office:02d}"
training_completed = {recent}
timezone = "America/Chicago"
"""
    return text


def _seed(core: Core) -> list[tuple[str, dict[str, Any]]]:
    """Cases at several stages, one per office, through the core; returns (user, button value)
    pairs: every button those cases offer, for the case's officer and every clicker (most are
    refused by role, AOR or stage checks)."""
    clicks = []
    for office in range(SEEDED_OFFICES):
        officer = _officer(office)
        case_id = open_case(core, actor=officer)
        stage = office % 4
        if stage == 1:
            to_review(core, case_id, officer)
        elif stage == 2:
            to_approval(core, case_id, officer)
            assert press(core, officer, case_id, ActionId.request_approval).ok
        elif stage == 3:
            to_documents(core, case_id, officer)
        clicks += [(user, value.to_dict()) for value in buttons(core, case_id).values()
                   for user in (officer, *CLICKERS)]
    return clicks


def _plan(load: Load, *, clicks: list[tuple[str, dict[str, Any]]], view: dict[str, Any],
          fake: FakeSlack, seed: int) -> list[dict[str, Any]]:
    """The requests, in planned order. Bodies carry placeholders (`{token}`) that `_fresh`
    fills, so the bare app and the bot get the same plan with distinct ids."""
    rng = random.Random(seed)
    case_ids = sorted({str(value["case_id"]) for _, value in clicks})
    commands = [("list", OFFICER), ("list", FRO), ("list", _officer(1)), ("help", OFFICER),
                ("open", OFFICER), ("open", _officer(2)), ("show", _officer(3)),
                ("show", MANAGER)]
    requests: list[dict[str, Any]] = []
    for index in range(round(load.seconds * load.rate)):
        at = index / load.rate
        if rng.random() < 0.5:
            name, user = rng.choice(commands)
            text = f"show {rng.choice(case_ids)}" if name == "show" else name
            body = command_body(user, text, channel=CHANNEL, trigger_id="trig-{token}",
                                response_url=fake.response_url("{token}"))
            requests.append({"at": at, "kind": "command", "tag": name, "body": body})
        else:
            user, value = rng.choice(clicks)
            body = click_body(user, value, channel=CHANNEL, trigger_id="trig-{token}",
                              response_url=fake.response_url("{token}"))
            requests.append({"at": at, "kind": "click", "tag": value["action"], "body": body})
    for index in range(round(load.seconds * load.submit_rate)):
        at = (index + 0.5) / load.submit_rate
        office = SEEDED_OFFICES + index % (OFFICES - SEEDED_OFFICES)
        body = submit_body(_officer(office), view, OPEN_VALUES, view_id="V{token}")
        requests.append({"at": at, "kind": "submit", "tag": "open_case", "body": body})
    return requests


def _fresh(plan: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The plan with unique trigger ids, response URLs and view ids (a view id becomes the
    new case's submission key, so each submit opens its own case)."""
    fresh = []
    for index, request in enumerate(plan):
        token = f"{prefix}{index:06d}{uuid.uuid4().hex[:6]}"
        fresh.append({**request, "token": token,
                      "body": request["body"].replace("%7Btoken%7D", token)
                      .replace("{token}", token)})
    return fresh


# --- processes -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _server(argv: list[str], env: dict[str, str], port: int,
            log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as errors:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=errors)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[2]} did not start: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _drive(bench: Bench, port: int, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    name = uuid.uuid4().hex[:8]
    source, target = bench.workdir / f"plan-{name}.json", bench.workdir / f"rows-{name}.json"
    source.write_text(json.dumps({"url": f"http://127.0.0.1:{port}", "secret": SECRET,
                                  "requests": requests}))
    last = max((float(r["at"]) for r in requests), default=0.0)
    subprocess.run([sys.executable, "-m", "bench.loadgen", str(source), str(target)],
                   cwd=ROOT, check=True, timeout=last + 120,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows: list[dict[str, Any]] = json.loads(target.read_text())
    source.unlink()
    target.unlink()
    return rows


def _wait_delivered(engine: Engine, *, timeout: float) -> None:
    unfinished = (OutboxStatus.pending.value, OutboxStatus.sending.value)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(engine) as session:
            left = session.exec(select(func.count()).select_from(OutboxMessage)
                                .where(col(OutboxMessage.status).in_(unfinished))).one()
        if left == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("the relay did not deliver the seeded cases' messages")


@dataclass
class Memory:
    samples: int = 0
    pss_mb: float = 0.0  # master + workers, at the sample where the sum peaked
    master_mb: float = 0.0  # peak RSS
    worker_mb: float = 0.0  # peak RSS of the largest worker


def _pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no Pss for {pid}")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@contextmanager
def _sampling(pid: int, every: float = 0.25) -> Iterator[Memory]:
    """Resident memory of `pid` (gunicorn's master) and its workers, sampled until exit."""
    memory, done = Memory(), threading.Event()

    def sample() -> None:
        while not done.wait(every):
            try:
                children = _children(pid)
                pss = _pss_mb(pid) + sum(_pss_mb(child) for child in children)
                master, workers = rss_mb(pid), [rss_mb(child) for child in children]
            except (OSError, ValueError):  # a worker came or went meanwhile
                continue
            memory.samples += 1
            memory.pss_mb = max(memory.pss_mb, pss)
            memory.master_mb = max(memory.master_mb, master)
            memory.worker_mb = max([memory.worker_mb, *workers])

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield memory
    finally:
        done.set()
        thread.join()


# --- results -------------------------------------------------------------------------------


@dataclass
class Posts:
    """Per answered submit, seconds from its planned send until its case's root message and
    its first thread reply reached the fake Slack; and how many never got them."""

    root: list[float]
    reply: list[float]
    no_root: int
    no_reply: int


def _submit_latencies(rows: list[dict[str, Any]], engine: Engine, fake: FakeSlack, *,
                      timeout: float) -> Posts:
    planned = {f"slack-view:V{r['token']}": float(r["planned"]) for r in rows
               if r["kind"] == "submit" and r["status"] == 200}
    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            cases = dict(session.exec(select(Case.submission_key, Case.id)
                                      .where(col(Case.submission_key).in_(planned))).all())
            firsts: dict[str, dict[str, int]] = {}
            for row in session.exec(select(OutboxMessage)
                                    .where(col(OutboxMessage.case_id).in_(cases.values()))
                                    .order_by(col(OutboxMessage.id))):
                assert row.case_id is not None and row.id is not None
                firsts.setdefault(row.case_id, {}).setdefault(row.destination_kind, row.id)
        with fake._lock:
            received: dict[int, float] = {}
            for call in fake.calls:
                if call.method != "chat.postMessage":
                    continue
                outbox_id = ((call.body.get("metadata") or {}).get("event_payload")
                             or {}).get("outbox_id")
                if outbox_id is not None:
                    received.setdefault(int(outbox_id), call.at)
        posts = Posts([], [], 0, 0)
        for key, sent in planned.items():
            ids = firsts.get(cases.get(key, ""), {})
            for where, found in (("channel", posts.root), ("thread", posts.reply)):
                outbox_id = ids.get(where)
                if outbox_id is not None and outbox_id in received:
                    found.append(received[outbox_id] - sent)
                elif where == "channel":
                    posts.no_root += 1
                else:
                    posts.no_reply += 1
        if posts.no_root + posts.no_reply == 0 or time.monotonic() > deadline:
            return posts
        time.sleep(0.2)


def _stats(rows: list[dict[str, Any]], kinds: tuple[str, ...]) -> dict[str, Any]:
    mine = [r for r in rows if r["kind"] in kinds]
    answered = [1000 * (float(r["done"]) - float(r["planned"])) for r in mine if r["status"]]
    statuses: dict[str, int] = {}
    for r in mine:
        if r["status"] != 200:
            key = str(r["status"] or r["error"])
            statuses[key] = statuses.get(key, 0) + 1
    found: dict[str, Any] = {"requests": len(mine), "not_200": statuses}
    for q in (50, 95, 99):
        found[f"p{q}_ms"] = round(percentile(answered, q), 2) if answered else float("nan")
    found["max_ms"] = round(max(answered), 1) if answered else float("nan")
    found["generator_late_max_ms"] = round(max(
        (1000 * (float(r["sent"]) - float(r["planned"])) for r in mine), default=0.0), 2)
    return found


def _report(bench: Bench, kind: str, load: Load, *, bot: list[dict[str, Any]],
            bare: list[dict[str, Any]], p2: Posts, memory: Memory) -> list[Result]:
    judge = not bench.quick
    acks = ("command", "click")
    mine, base = _stats(bot, acks), _stats(bare, acks)
    ratio = mine["p50_ms"] / base["p50_ms"] if base["p50_ms"] else float("nan")
    clean = not mine["not_200"] and not base["not_200"]
    workload = {"seconds": load.seconds, "rate_per_s": load.rate,
                "submits_per_s": load.submit_rate, "mix": _mix(bot)}
    root_ms, reply_ms = [1000 * t for t in p2.root], [1000 * t for t in p2.reply]
    p2_p99 = percentile(root_ms, 99) if root_ms else float("nan")
    return [
        Result(id="P1", name=f"ack p50, serve vs bare Bolt ({kind})", value=round(ratio, 3),
               unit="×", target=f"≤ {P1_RATIO}×", ok=ratio <= P1_RATIO and clean if judge
               else None, details={"serve": mine, "bare": base, **workload}),
        Result(id="P1", name=f"ack p99 at {load.rate:g} req/s, commands+clicks ({kind})",
               value=mine["p99_ms"], unit="ms", target=f"≤ {P1_P99_MS:g} ms",
               ok=mine["p99_ms"] <= P1_P99_MS and clean if judge else None,
               details={"p50_ms": mine["p50_ms"], "p95_ms": mine["p95_ms"],
                        "bare_p99_ms": base["p99_ms"], "not_200": mine["not_200"]}),
        Result(id="P2", name=f"submit → case stored + thread root posted p99 ({kind})",
               value=round(p2_p99, 1), unit="ms", target=f"≤ {P2_P99_MS:g} ms",
               ok=p2_p99 <= P2_P99_MS and p2.no_root == 0 if judge else None,
               details={"submits": len(root_ms) + p2.no_root, "root_not_posted": p2.no_root,
                        **_spread(root_ms),
                        "first_reply": {**_spread(reply_ms), "not_posted": p2.no_reply},
                        "submit_ack": _stats(bot, ("submit",))}),
        Result(id="P6", name=f"serve memory under P1 load, PSS master+worker ({kind})",
               value=round(memory.pss_mb, 1), unit="MB", target=f"≤ {RSS_LIMIT_MB:g} MB",
               ok=memory.pss_mb <= RSS_LIMIT_MB if judge else None,
               details={"worker_peak_rss_mb": round(memory.worker_mb, 1),
                        "master_peak_rss_mb": round(memory.master_mb, 1),
                        "samples": memory.samples}),
    ]


def _spread(ms: list[float]) -> dict[str, float | None]:
    found: dict[str, float | None] = {
        f"p{q}_ms": round(percentile(ms, q), 1) if ms else None for q in (50, 95, 99)}
    found["max_ms"] = round(max(ms), 1) if ms else None
    return found


def _mix(rows: list[dict[str, Any]]) -> dict[str, int]:
    mix: dict[str, int] = {}
    for r in rows:
        key = f"{r['kind']}:{r['tag']}"
        mix[key] = mix.get(key, 0) + 1
    return dict(sorted(mix.items()))
