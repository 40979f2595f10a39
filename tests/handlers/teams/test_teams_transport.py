"""The Teams transport against a Bot Connector stood in for by respx: what it sends, and how each
answer becomes a `Retry` (with Retry-After honoured when given) or a `Dead`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bot.delivery.port import Address, Dead, Posted, Recipient, Retry, Transport
from bot.messages import Action, ActionId, ActionValue, Message, mention
from config.teams import TeamsCloud
from handlers.teams.transport import (
    PACING,
    TeamsTransport,
    msal_tokens,
    retry_after,
)
from tests.handlers.teams.card_schema import declared_problems, problems
from tests.handlers.teams.conftest import teams_settings
from tests.handlers.teams.fake_teams import APP_ID, TENANT

SERVICE = "https://smba.infra.gov.teams.microsoft.us/teams"
CHANNEL = "19:houcases@thread.tacv2"
PEOPLE = {"U0SUP1": Recipient("U0SUP1", "0000-fro", "Sam Supervisor")}
MESSAGE = Message(title="Approval requested", text=f"{mention('U0SUP1')}, please decide.",
                  actions=(Action("Approve", ActionValue(ActionId.approve, "RN-2026-0001", 1)),))


def transport() -> TeamsTransport:
    return TeamsTransport(service_url=SERVICE, bot_id=APP_ID, tenant_id=TENANT,
                          token=lambda: "token-1")


def test_it_is_a_transport_that_cannot_find_and_paces_to_teams_limits() -> None:
    sender: Transport = transport()
    assert sender.can_find is False and sender.find(to=Address(CHANNEL), outbox_id=1) is None
    # 7 per second per thread and 60 per 30 s: at most 2 a second; 50 a second per tenant.
    assert PACING.per_conversation >= 0.5
    assert PACING.per_second is not None and PACING.per_second <= 50


@respx.mock
def test_a_root_post_a_thread_reply_and_an_update() -> None:
    root = respx.post(f"{SERVICE}/v3/conversations/{CHANNEL}/activities").respond(
        201, json={"id": "1700000000001"})
    sender = transport()
    posted = sender.post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE)
    assert posted == Posted(CHANNEL, "1700000000001")
    body = json.loads(root.calls[-1].request.content)
    assert root.calls[-1].request.headers["Authorization"] == "Bearer token-1"
    card = body["attachments"][0]["content"]
    assert card["version"] == "1.5"
    # The title as the summary (notifications), not as text Teams would show above the card.
    assert "text" not in body and body["summary"] == "Approval requested"
    assert "Sam Supervisor" in json.dumps(card) and "<@" not in json.dumps(body)
    thread = f"{CHANNEL};messageid=1700000000001"
    reply = respx.post(f"{SERVICE}/v3/conversations/{thread}/activities").respond(
        201, json={"id": "1700000000002"})
    posted_reply = sender.post(to=Address(CHANNEL, thread="1700000000001"), message=MESSAGE,
                               outbox_id=2, people=PEOPLE)
    assert reply.called and posted_reply.conversation == thread
    update = respx.put(f"{SERVICE}/v3/conversations/{thread}/activities/1700000000002"
                       ).respond(200, json={"id": "1700000000002"})
    sender.update(posted=posted_reply, message=MESSAGE, people=PEOPLE)
    assert json.loads(update.calls[-1].request.content)["id"] == "1700000000002"


@respx.mock
def test_people_named_in_a_new_channel_post_are_mentioned_and_nowhere_else() -> None:
    """A mention (by Entra object id) notifies the person: in a channel's new posts only. A
    1:1 chat is not theirs to be told in, and an update in place names them plainly."""
    people = {**PEOPLE, "U0SUP2": Recipient("U0SUP2", "0000-sup2", "Sam Supervisor"),
              "U0OFF": Recipient("U0OFF", "0000-off", "Olive Officer")}
    message = Message(title=f"Approved by {mention('U0SUP1')}",
                      text=f"{mention('U0OFF')}: {mention('U0SUP2')} and {mention('U0SUP1')} "
                           f"agreed; {mention('U0GONE')} was away.",
                      fields=(("Asked by", mention("U0OFF")),))
    root = respx.post(f"{SERVICE}/v3/conversations/{CHANNEL}/activities").respond(
        201, json={"id": "1"})
    sender = transport()
    posted = sender.post(to=Address(CHANNEL), message=message, outbox_id=1, people=people)
    body = json.loads(root.calls[-1].request.content)
    card = body["attachments"][0]["content"]
    assert card["msteams"]["entities"] == [
        {"type": "mention", "text": "<at>Sam Supervisor</at>",
         "mentioned": {"id": "0000-fro", "name": "Sam Supervisor"}},
        {"type": "mention", "text": "<at>Olive Officer</at>",
         "mentioned": {"id": "0000-off", "name": "Olive Officer"}}]
    said = json.dumps(card["body"])
    # The second Sam is named, not mentioned: Teams would pair both with the first's entity.
    assert "<at>Olive Officer</at>: Sam Supervisor and <at>Sam Supervisor</at>" in said
    assert "was away" in said and "someone was away" in said
    assert body["summary"] == "Approved by Sam Supervisor"  # plain text: no mention markup
    assert problems(card) == [] and declared_problems(card) == []
    update = respx.put(f"{SERVICE}/v3/conversations/{CHANNEL}/activities/1").respond(200)
    sender.update(posted=posted, message=message, people=people)
    updated = json.loads(update.calls[-1].request.content)["attachments"][0]["content"]
    assert "msteams" not in updated and "<at>" not in json.dumps(updated)
    dm = respx.post(f"{SERVICE}/v3/conversations/a:dm-1/activities").respond(
        201, json={"id": "2"})
    sender.post(to=Address("a:dm-1"), message=message, outbox_id=2, people=people)
    in_dm = json.loads(dm.calls[-1].request.content)["attachments"][0]["content"]
    assert "msteams" not in in_dm and "Olive Officer" in json.dumps(in_dm)


@respx.mock
def test_a_post_whose_mentions_teams_refuses_goes_again_without_them() -> None:
    """A 400 for a post with mentions (someone who left the tenant) would make the case's
    post a dead letter: it goes once more naming people plainly. A 400 without mentions is
    still a dead letter."""
    root = respx.post(f"{SERVICE}/v3/conversations/{CHANNEL}/activities")
    root.side_effect = [httpx.Response(400, json={"error": {"code": "BadArgument"}}),
                        httpx.Response(201, json={"id": "7"})]
    sender = transport()
    assert sender.post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1,
                       people=PEOPLE) == Posted(CHANNEL, "7")
    first, second = (json.loads(c.request.content)["attachments"][0]["content"]
                     for c in root.calls)
    assert "msteams" in first and "msteams" not in second
    assert "Sam Supervisor" in json.dumps(second) and "<at>" not in json.dumps(second)
    root.side_effect = [httpx.Response(400)]
    with pytest.raises(Dead):
        sender.post(to=Address(CHANNEL), message=Message(text="no one named"), outbox_id=2,
                    people=PEOPLE)
    assert root.call_count == 3


@respx.mock
def test_a_direct_message_conversation_is_created_for_the_persons_object_id() -> None:
    # The transport only asks; the delivery loop keeps the answer (tests/delivery).
    create = respx.post(f"{SERVICE}/v3/conversations").respond(201, json={"id": "a:1dm"})
    sender = transport()
    assert sender.open_dm(recipient=PEOPLE["U0SUP1"]) == "a:1dm"
    assert create.call_count == 1
    body = json.loads(create.calls[-1].request.content)
    assert body["members"] == [{"id": "0000-fro"}] and body["isGroup"] is False
    assert body["bot"] == {"id": f"28:{APP_ID}"} and body["tenantId"] == TENANT


@pytest.mark.parametrize(("status", "headers", "uncertain", "delay"), [
    (429, {"Retry-After": "7"}, False, dt.timedelta(seconds=7)),
    (429, {}, False, None),
    (412, {}, False, None),
    (502, {}, True, None),
    (504, {"Retry-After": "2"}, True, dt.timedelta(seconds=2)),
    (500, {}, True, None),
    (401, {}, False, None),
])
@respx.mock
def test_transient_answers_are_retried(status: int, headers: dict[str, str], uncertain: bool,
                                       delay: dt.timedelta | None) -> None:
    respx.post(f"{SERVICE}/v3/conversations/{CHANNEL}/activities").respond(
        status, headers=headers, json={"error": {"code": "x"}})
    with pytest.raises(Retry) as raised:
        transport().post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE)
    assert raised.value.uncertain is uncertain
    assert raised.value.delay == delay
    assert raised.value.code.startswith(str(status))


@pytest.mark.parametrize(("header", "delay"), [
    ("Wed, 21 Oct 2026 07:28:30 GMT", dt.timedelta(seconds=30)),  # an HTTP date, 30 s ahead
    ("Wed, 21 Oct 2026 07:27:00 GMT", dt.timedelta(0)),  # already past: at once
    ("Wed, 21 Oct 2026 09:28:00 GMT", dt.timedelta(hours=1)),  # capped at an hour
    ("  12 ", dt.timedelta(seconds=12)),
    ("soon", None),  # unreadable: the loop's back-off applies
    ("nan", None),
])
def test_retry_after_is_read_as_seconds_or_as_an_http_date(header: str,
                                                           delay: dt.timedelta | None) -> None:
    now = dt.datetime(2026, 10, 21, 7, 28, tzinfo=dt.UTC)
    answer = httpx.Response(429, headers={"Retry-After": header})
    assert retry_after(answer, now=now) == delay


@pytest.mark.parametrize("status", [400, 403, 404])
@respx.mock
def test_permanent_answers_are_dead_letters(status: int) -> None:
    respx.put(f"{SERVICE}/v3/conversations/{CHANNEL}/activities/9").respond(
        status, json={"error": {"code": "BotNotInConversationRoster"}})
    with pytest.raises(Dead) as raised:
        transport().update(posted=Posted(CHANNEL, "9"), message=MESSAGE, people=PEOPLE)
    assert raised.value.code.startswith(str(status))


@pytest.mark.parametrize(("error", "uncertain"), [
    (httpx.ConnectError("refused"), False),
    (httpx.ConnectTimeout("slow"), False),
    (httpx.ReadTimeout("no answer"), True),
    (httpx.RemoteProtocolError("cut"), True),
])
@respx.mock
def test_timeouts_and_broken_connections_are_retried(error: Exception, uncertain: bool) -> None:
    respx.post(f"{SERVICE}/v3/conversations/{CHANNEL}/activities").mock(side_effect=error)
    with pytest.raises(Retry) as raised:
        transport().post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE)
    assert raised.value.uncertain is uncertain


def test_a_token_that_cannot_be_had_is_a_retry_with_nothing_sent() -> None:
    def broken() -> str:
        raise RuntimeError("login.microsoftonline.us unreachable")

    sender = TeamsTransport(service_url=SERVICE, bot_id=APP_ID, tenant_id=TENANT, token=broken)
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{SERVICE}/v3/conversations/{CHANNEL}/activities")
        with pytest.raises(Retry) as raised:
            sender.post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE)
    assert not route.called and raised.value.uncertain is False


class FakeLogin:
    """Entra's token endpoint for MSAL's own HTTP calls (a requests-like client)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    class Answer:
        def __init__(self, body: dict[str, Any]) -> None:
            self.status_code, self.text = 200, json.dumps(body)
            self.headers: dict[str, str] = {}

        def raise_for_status(self) -> None:
            pass

    def get(self, url: str, **kwargs: Any) -> FakeLogin.Answer:
        self.calls.append(("GET", url, kwargs))
        base = url.split("/v2.0/")[0]
        return self.Answer({"token_endpoint": f"{base}/oauth2/v2.0/token",
                            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                            "issuer": f"{base}/v2.0"})

    def post(self, url: str, **kwargs: Any) -> FakeLogin.Answer:
        self.calls.append(("POST", url, kwargs))
        return self.Answer({"access_token": "eyJ.gcch.token", "token_type": "Bearer",
                            "expires_in": 3600})

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("cloud", "login", "scope"), [
    (TeamsCloud.gcc_high, "https://login.microsoftonline.us", "https://api.botframework.us/.default"),
    (TeamsCloud.dod, "https://login.microsoftonline.us", "https://api.botframework.us/.default"),
    (TeamsCloud.gcc, "https://login.microsoftonline.com", "https://api.botframework.com/.default"),
])
def test_msal_asks_the_clouds_authority_for_the_clouds_bot_scope(
        cloud: TeamsCloud, login: str, scope: str) -> None:
    fake = FakeLogin()
    tokens = msal_tokens(teams_settings(cloud=cloud), http_client=fake)
    assert tokens() == "eyJ.gcch.token"
    assert tokens() == "eyJ.gcch.token"  # cached by MSAL: one token request
    posts = [c for c in fake.calls if c[0] == "POST"]
    assert len(posts) == 1 and posts[0][1].startswith(f"{login}/{TENANT}/")
    sent = posts[0][2]["data"]
    assert scope in sent["scope"].split()
    assert sent["grant_type"] == "client_credentials" and sent["client_secret"] == "test-secret"


def test_msal_signs_with_a_certificate(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "noticebot")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = tmp_path / "bot.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
                    + cert.public_bytes(serialization.Encoding.PEM))
    fake = FakeLogin()
    settings = teams_settings(cloud=TeamsCloud.gcc_high, client_secret="",
                              certificate_file=str(pem))
    assert msal_tokens(settings, http_client=fake)() == "eyJ.gcch.token"
    sent = next(c for c in fake.calls if c[0] == "POST")[2]["data"]
    assert "client_secret" not in sent
    assert sent["client_assertion_type"].endswith("jwt-bearer") and sent["client_assertion"]


@respx.mock
def test_a_post_whose_answer_is_lost_is_uncertain_and_a_resend_duplicates_it() -> None:
    """What the README's "crash between send and store" describes: Teams took the post, the
    answer never came back, the loop cannot look (can_find is False) and sends again."""
    landed: list[dict[str, Any]] = []

    def connector(request: httpx.Request) -> httpx.Response:
        landed.append(json.loads(request.content))
        if len(landed) == 1:
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(201, json={"id": f"17000000000{len(landed)}"})

    respx.post(f"{SERVICE}/v3/conversations/{CHANNEL}/activities").mock(side_effect=connector)
    sender = transport()
    with pytest.raises(Retry) as raised:
        sender.post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE)
    assert raised.value.uncertain is True
    assert sender.find(to=Address(CHANNEL), outbox_id=1) is None  # nothing to look up
    sender.post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE)
    assert len(landed) == 2 and landed[0] == landed[1]  # the same card, twice in the channel


def test_a_login_service_that_never_answers_gives_up_within_the_token_time_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """MSAL's own HTTP session, as in production (no test client), through a proxy that takes
    the connection and never answers: the token call fails within the limit, so a delivery
    thread (and its 60-second claim) is never held for ever."""
    import socket
    import threading

    import handlers.teams.transport as transport_module

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []
    def take_and_keep_silent() -> None:
        try:
            for _ in range(8):
                held.append(silent.accept()[0])
        except OSError:  # closed at the test's end
            return

    threading.Thread(target=take_and_keep_silent, daemon=True).start()
    proxy = f"http://127.0.0.1:{silent.getsockname()[1]}"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setattr(transport_module, "TOKEN_SECONDS", 0.5)
    tokens = msal_tokens(teams_settings(cloud=TeamsCloud.gcc_high))
    failed: list[BaseException] = []

    def fetch() -> None:
        try:
            tokens()
        except Exception as error:  # MSAL's or requests' own: any will do
            failed.append(error)

    asking = threading.Thread(target=fetch, daemon=True)  # without a limit it would hang
    asking.start()
    asking.join(timeout=10)
    assert not asking.is_alive() and failed
    silent.close()
    for connection in held:
        connection.close()


@respx.mock
def test_a_service_url_off_the_clouds_bot_connector_is_a_dead_letter_and_gets_no_token(
        ) -> None:
    """A roster's service_url for the wrong cloud, or a typo: never sent the bot's token, and
    told to the admins as a dead letter instead of retried for ever."""
    elsewhere = "https://smba.trafficmanager.net/amer"  # public cloud's, in a GCC High roster
    anywhere = respx.route().respond(201, json={"id": "1"})
    sender = TeamsTransport(service_url=SERVICE, bot_id=APP_ID, tenant_id=TENANT,
                            token=lambda: "token-1", service_url_for=lambda _: elsewhere,
                            service_hosts=teams_settings(cloud=TeamsCloud.gcc_high)
                            .service_hosts())
    with pytest.raises(Dead, match=r"service_url_not_allowed: smba\.trafficmanager\.net"):
        sender.post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE)
    assert not anywhere.called
    own = TeamsTransport(service_url=SERVICE, bot_id=APP_ID, tenant_id=TENANT,
                         token=lambda: "token-1", service_url_for=lambda _: SERVICE + "/")
    assert own.post(to=Address(CHANNEL), message=MESSAGE, outbox_id=1, people=PEOPLE).ref == "1"
