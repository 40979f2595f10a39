"""A bounded, seeded fuzz run against the real WSGI app (Slack endpoint and USNCB callback).

A few hundred requests, signed and unsigned, across every payload type the bot serves: slash
commands, block_actions, view_submission, view_closed, events and USNCB callbacks. Most are
built from what the bot really showed (its buttons and modals), then some are mutated: ids of
the wrong type, NUL bytes, oversized ids, damaged JSON, invalid UTF-8, truncated bodies,
Slack retries, forged or stale signatures. Invariants afterwards:

- no answer is a 5xx, and nothing was logged with a traceback or at ERROR;
- nothing half-written: every case, every queued message and every processed delivery has
  its record entries (each unit of work commits all of its writes or none);
- `noticebot audit verify` passes.

NOTICEBOT_FUZZ_SEED picks another seed (CI runs the fixed one); NOTICEBOT_FUZZ_REQUESTS the
number of requests. The run is bounded to about a minute either way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlmodel import Session, col, func, select

from bot.core.service import Core
from bot.usncb.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from config.settings import Settings
from handlers.cli import main
from storage import record
from storage.models import Case, OutboxMessage, ProcessedDelivery, RecordEntry, UsncbRequest
from storage.vault import Vault
from tests.conftest import TEST_KEY
from tests.handlers.slack.conftest import SECRET, SlackUser
from tests.handlers.slack.slack_requests import FORM, submit_body
from tests.handlers.slack.wsgi_call import Answer, call
from tests.helpers import (
    DESIGNEE,
    FRO,
    MANAGER,
    OFFICER,
    OFFICER_LAPSED,
    OPLA,
    RECORDS,
    SUBJECT,
)

SEED = int(os.environ.get("NOTICEBOT_FUZZ_SEED", "20261201"))
REQUESTS = int(os.environ.get("NOTICEBOT_FUZZ_REQUESTS", "600"))
BUDGET_SECONDS = 60.0
USNCB_SECRET = "fuzz-liaison-secret-0123456789abcdef"
USERS = [OFFICER, OFFICER, OFFICER, FRO, DESIGNEE, MANAGER, OPLA, RECORDS, OFFICER_LAPSED,
         "U0STRANGER"]
BAD_IDS: list[Any] = [1, 0, True, False, None, [], {}, 1.5, "", "U0OFF1\x00", "x" * 3000,
                      "<@U0OFF1>", "é", "U0 OFF1"]
BAD_TEXT = ["\x00", "RN-\x00", "R" * 6000, "é" * 50, "'; DROP TABLE notice_case; --",
            "{{7*7}}", "\u202e", "\ud7ff", "<!channel>", "\n\n\n", "0" * 300]
COMMANDS = ["open", "list", "help", "training", "digest", "show {case}", "hold {case} court",
            "delegate <@U0SUP2> until 2026-12-31", "delegate @U0SUP2 until 2020-01-01",
            "nonsense", "", "show", "show RN-2026-9999"]
GOOD_VALUES: dict[str, Any] = {
    "notice_type": "red_notice", "intended_use": "immigration", "extradition_pending": "no",
    **SUBJECT, "sent_on": "2026-11-23", "method": "e-mail", "status": "active",
    "answered_on": "2026-11-23", "sources": ["interpol_guidance", "law_enforcement_systems",
                                             "usg_reports", "public_information"],
    "outcome": "no_indications", "reason": "not enough basis", "documents": ["warrant"],
    "answer": "received", "received": ["warrant"], "indications": "no",
    "better_evidence": "yes", "purpose": "immigration", "provided_on": "2026-11-23",
    "provided": "warrant copy", "respond_by": "2026-12-14", "not_a_warrant": "yes",
    "i213": "yes", "note": "bulletin",
}


class Fuzzer:
    def __init__(self, slack: SlackUser, core: Core, rng: random.Random) -> None:
        assert slack.wsgi is not None
        self.slack, self.core, self.rng, self.app = slack, core, rng, slack.wsgi
        self.answers: Counter[str] = Counter()
        self.failures: list[str] = []

    # --- sending --------------------------------------------------------------------------

    def send(self, kind: str, body: bytes, content_type: str = FORM, *,
             path: str = "/slack/events") -> Answer:
        rng = self.rng
        headers = {"Content-Type": content_type}
        roll = rng.random()
        stamp = str(int(time.time()))
        if path == "/slack/events":
            if roll < 0.75:
                headers |= _slack_signature(body, stamp)
            elif roll < 0.80:
                headers |= _slack_signature(body, str(int(time.time()) - 400))  # stale
            elif roll < 0.85:
                headers |= {"X-Slack-Request-Timestamp": rng.choice(["", "1.5", "abc", "١٢٣",
                                                                     f"{stamp},{stamp}"]),
                            "X-Slack-Signature": "v0=" + "0" * 64}
            elif roll < 0.90:
                headers |= {"X-Slack-Request-Timestamp": stamp,
                            "X-Slack-Signature": rng.choice(["v0=é" + "0" * 63, "", "v0="])}
            # else: no signature at all
            if rng.random() < 0.1:
                headers["X-Slack-Retry-Num"] = str(rng.randint(1, 3))
        else:
            if roll < 0.8:
                headers |= {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(USNCB_SECRET,
                                                                            int(stamp), body)}
            elif roll < 0.9:
                headers |= {TIMESTAMP_HEADER: stamp,
                            SIGNATURE_HEADER: rng.choice(["v1=é0", "v1=" + "0" * 64, ""])}
        length = None
        if rng.random() < 0.03 and body:
            length = len(body) + rng.randint(1, 50)  # truncated: the body is shorter
        answer = call(self.app, path, body, headers, content_length=length)
        self.answers[f"{kind} {answer.status}"] += 1
        if answer.status >= 500 or "Traceback" in answer.text:
            self.failures.append(f"{kind}: {answer.status} {answer.text[:200]!r} for "
                                 f"{body[:300]!r}")
        return answer

    # --- what the bot showed --------------------------------------------------------------

    def case_ids(self) -> list[str]:
        with Session(self.core.engine) as session:
            return list(session.exec(select(Case.id)))

    def request_ids(self) -> list[str]:
        with Session(self.core.engine) as session:
            return [r for r in session.exec(select(UsncbRequest.external_id)) if r]

    def a_case(self) -> str:
        ids = self.case_ids()
        return self.rng.choice(ids) if ids and self.rng.random() < 0.9 else "RN-2026-0001"

    def a_user(self) -> Any:
        return self.rng.choice(BAD_IDS) if self.rng.random() < 0.08 else self.rng.choice(USERS)

    def mutate(self, value: Any) -> Any:
        """Sometimes replace one leaf of a JSON value with something hostile."""
        rng = self.rng
        if rng.random() > 0.15:
            return value
        if isinstance(value, dict) and value:
            key = rng.choice(list(value))
            return {**value, key: self.mutate_leaf(value[key])}
        if isinstance(value, list) and value:
            index = rng.randrange(len(value))
            return [*value[:index], self.mutate_leaf(value[index]), *value[index + 1:]]
        return self.mutate_leaf(value)

    def mutate_leaf(self, value: Any) -> Any:
        rng = self.rng
        if isinstance(value, dict | list) and rng.random() < 0.6:
            return self.mutate(value)
        return rng.choice([*BAD_IDS, *BAD_TEXT, [value], {"v": value}, -1, 2**63, None])

    # --- payload types ----------------------------------------------------------------------

    def command(self) -> None:
        text = self.rng.choice(COMMANDS).format(case=self.a_case())
        if self.rng.random() < 0.15:
            text += " " + self.rng.choice(BAD_TEXT)
        token = f"{self.rng.getrandbits(32):08x}"
        body = {"command": "/notice", "text": text, "user_id": self.a_user(),
                "channel_id": self.rng.choice(["C0HOUCASES", "C0HOUCASES", "D123", ""]),
                "team_id": "T1", "trigger_id": f"1.2.{token}",
                "response_url": self.slack.fake.response_url(token)}
        if self.rng.random() < 0.1:
            body[self.rng.choice(list(body))] = self.rng.choice(BAD_TEXT)
        self.send("command", urlencode({k: str(v) for k, v in body.items()}).encode())

    def click(self) -> None:
        buttons = self.slack.buttons()
        rng = self.rng
        if buttons and rng.random() < 0.85:
            value: Any = rng.choice(buttons[-40:])
        else:
            value = {"action": rng.choice(["approve", "deny", "show_case", "withdraw", "x"]),
                     "case_id": self.a_case(), "ref": rng.choice([None, 1, 2, 99])}
        value = self.mutate(value)
        raw_value = json.dumps(value) if rng.random() > 0.05 else rng.choice(
            ["{not json", "[1]", "null", "[" * 3000])
        token = f"{rng.getrandbits(32):08x}"
        from_home = rng.random() < 0.15
        action = value.get("action") if isinstance(value, dict) else "x"
        payload: dict[str, Any] = {
            "type": "block_actions", "team": {"id": "T1"}, "user": {"id": self.a_user()},
            "trigger_id": f"3.4.{token}",
            "actions": [{"type": "button", "action_id": f"nb:{action}:0",
                         "block_id": "b", "value": raw_value, "action_ts": f"{time.time():.6f}"}],
        }
        if not from_home:
            payload |= {"response_url": self.slack.fake.response_url(token),
                        "channel": {"id": "C0HOUCASES"},
                        "container": {"type": "message", "channel_id": "C0HOUCASES"}}
        else:
            payload["container"] = {"type": "view", "view_id": "VHOME"}
        self.send("block_actions", urlencode({"payload": json.dumps(self.mutate(payload))})
                  .encode())

    def submission(self) -> None:
        views = self.slack.fake.of("views.open")
        forms = [v["view"] for v in views if "private_metadata" in v["view"]]
        rng = self.rng
        if not forms:
            return self.command()
        view = rng.choice(forms[-20:])
        values = {k: self.mutate(v) for k, v in GOOD_VALUES.items()}
        body = submit_body(self.a_user() if rng.random() < 0.5 else OFFICER, view, values,
                           view_id=f"V{rng.getrandbits(24):06X}" if rng.random() < 0.8
                           else "VREPEAT")
        if rng.random() < 0.2:
            payload = json.loads(dict(_form_fields(body))["payload"])
            body = urlencode({"payload": json.dumps(self.mutate(payload))})
        self.send("view_submission", body.encode())

    def view_closed(self) -> None:
        payload = {"type": "view_closed", "team": {"id": "T1"}, "user": {"id": self.a_user()},
                   "view": {"id": "VCLOSED", "callback_id": "nb:form", "type": "modal",
                            "private_metadata": "{}"}, "is_cleared": False}
        self.send("view_closed", urlencode({"payload": json.dumps(self.mutate(payload))})
                  .encode())

    def event(self) -> None:
        rng = self.rng
        kind = rng.choice(["app_home_opened", "app_home_opened", "message", "app_mention"])
        payload: dict[str, Any] = {
            "type": "event_callback", "team_id": "T1", "event_id": f"Ev{rng.getrandbits(32)}",
            "event": {"type": kind, "user": self.a_user(), "tab": rng.choice(["home", "about"]),
                      "channel": "D1", "text": "hi"}}
        if rng.random() < 0.05:
            payload = {"type": "url_verification", "challenge": "abc", "token": "t"}
        self.send("event", json.dumps(self.mutate(payload)).encode(), "application/json")

    def callback(self) -> None:
        rng = self.rng
        ids = self.request_ids()
        request_id = rng.choice(ids) if ids and rng.random() < 0.8 else "NB-RN-2026-0001-1"
        body: Any = {"request_id": request_id,
                     "answer": rng.choice(["active", "suspended", "received", "declined",
                                           "granted", "denied", "nonsense"]),
                     "answered_on": rng.choice(["2026-11-23", "yesterday", "2026-02-30"]),
                     "reference": "USNCB-1", "documents": ["warrant"]}
        raw = json.dumps(self.mutate(body)).encode()
        if rng.random() < 0.05:
            raw = rng.choice([b"{", b"[" * 30_000, b"\xff\xfe", b"null", b""])
        self.send("usncb_callback", raw, "application/json", path="/usncb/callback")

    def garbage(self) -> None:
        rng = self.rng
        body = rng.choice([b"payload=notjson", b"{", b"payload=[1]", b"payload=null",
                           b"\xff\xfe\xfd", b"payload=" + b"%5B" * 2000, b"a=b&c",
                           bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))])
        self.send("garbage", body, rng.choice([FORM, "application/json", "text/plain"]))

    def walk(self) -> None:
        """Open cases and move them on with good input, so later requests find real buttons,
        forms, cases and USNCB requests to aim at."""
        if not self.slack.fake.of("views.open") or self.rng.random() < 0.3:
            token = f"{self.rng.getrandbits(32):08x}"
            self.send("command", urlencode({
                "command": "/notice", "text": "open", "user_id": OFFICER,
                "channel_id": "C0HOUCASES", "team_id": "T1", "trigger_id": f"5.6.{token}",
                "response_url": self.slack.fake.response_url(token)}).encode())
        opened = [v["view"] for v in self.slack.fake.of("views.open")
                  if "private_metadata" in v["view"]]
        if opened:
            view = self.rng.choice(opened[-5:])
            self.send("view_submission", submit_body(
                OFFICER, view, GOOD_VALUES, view_id=f"VW{self.rng.getrandbits(24):06X}")
                .encode())


def _slack_signature(body: bytes, stamp: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest.hexdigest()}


def _form_fields(body: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(body, keep_blank_values=True)


@pytest.fixture
def fuzz_settings(slack_settings: Settings) -> Settings:
    # The callback endpoint is served once a liaison secret is set.
    return slack_settings.model_copy(update={"usncb_webhook_secret": SecretStr(USNCB_SECRET)})


def test_fuzz_no_5xx_no_traceback_nothing_half_written_and_the_chain_verifies(
    fuzz_settings: Settings, slack: SlackUser, core: Core, database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    core.settings = fuzz_settings
    caplog.set_level(logging.WARNING)
    rng = random.Random(SEED)
    fuzzer = Fuzzer(slack, core, rng)
    kinds = [(fuzzer.walk, 10), (fuzzer.command, 14), (fuzzer.click, 24),
             (fuzzer.submission, 18), (fuzzer.view_closed, 4), (fuzzer.event, 8),
             (fuzzer.callback, 12), (fuzzer.garbage, 10)]
    started = time.monotonic()
    sent = 0
    while sent < REQUESTS and time.monotonic() - started < BUDGET_SECONDS:
        action = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        action()
        sent += 1
    # Let every listener finish (they run after the ack in Bolt's thread pool).
    assert slack.bolt is not None
    slack.bolt._listener_runner.listener_executor.shutdown(wait=True)

    assert fuzzer.failures == [], fuzzer.failures[:5]
    assert sent >= min(REQUESTS, 200), f"only {sent} requests in the time budget"
    statuses = Counter(k.split()[1] for k in fuzzer.answers.elements())
    assert {"200", "400", "401"} <= set(statuses), fuzzer.answers  # the run reached every path
    broken = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert broken == [], [(r.name, r.getMessage()[:200]) for r in broken[:5]]

    with Session(core.engine) as session:
        # Nothing half-written: each unit of work commits its writes and their record together.
        for case_id in session.exec(select(Case.id)):
            assert session.exec(select(func.count()).select_from(RecordEntry).where(
                col(RecordEntry.case_id) == case_id, col(RecordEntry.kind) == "state")).one()
        queued = session.exec(select(func.count()).select_from(RecordEntry).where(
            col(RecordEntry.action) == "message.queued")).one()
        assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == queued
        interactions = session.exec(select(func.count()).select_from(RecordEntry).where(
            col(RecordEntry.kind).in_(("click", "form")))).one()
        assert session.exec(select(func.count()).select_from(ProcessedDelivery)).one() \
            <= interactions
        assert record.verify(session, Vault((TEST_KEY,))).ok
    result = CliRunner(env={"NOTICEBOT_DATABASE_URL": database_url,
                            "NOTICEBOT_ENCRYPTION_KEYS": TEST_KEY,
                            "NOTICEBOT_ENV": "development"}).invoke(main, ["audit", "verify"])
    assert result.exit_code == 0, result.output
