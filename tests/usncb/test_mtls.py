"""Mutual TLS to the liaison system, against a loopback TLS server that requires a client
certificate signed by its CA."""

from __future__ import annotations

import ipaddress
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.app import build_core, load_roster_text, sample_roster_text
from bot.clock import ManualClock
from bot.core.service import Core
from bot.messages import ActionId, ActionValue
from config.settings import Settings, SettingsError, UsncbChannelKind, load_settings
from storage.models import UsncbRequest
from tests.helpers import OFFICER, open_case
from tests.usncb.conftest import SECRET


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name,
           issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
           ip: str | None = None) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5))
               .not_valid_after(now + timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_key.public_key()), critical=False)
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("test liaison CA", ca_key, _name("test liaison CA"), ca_key, ca=True)
    _write(tmp_path / "ca", ca, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp_path / "server",
           _issue("liaison", server_key, ca.subject, ca_key, ip="127.0.0.1"), server_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    _write(tmp_path / "client", _issue("noticebot", client_key, ca.subject, ca_key), client_key)
    return tmp_path


@pytest.fixture
def liaison(pki: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server requiring a client certificate; yields its URL and the client names."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            peer = self.connection.getpeercert()
            seen.append(dict(x[0] for x in peer["subject"])["commonName"])
            body = b'{"reference": "US-TLS-1"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki / "server.pem", pki / "server.key")
    context.load_verify_locations(pki / "ca.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/usncb", seen
    server.shutdown()
    server.server_close()


def _core(settings: Settings, clock: ManualClock, engine: Engine, url: str,
          **tls: str) -> Core:
    webhook = settings.model_copy(update={
        "usncb_channel": UsncbChannelKind.webhook, "usncb_webhook_url": url,
        "usncb_webhook_secret": SecretStr(SECRET), "usncb_max_attempts": 1, **tls})
    core = build_core(webhook, clock=clock, engine=engine)
    load_roster_text(core, sample_roster_text(clock.now().date()), actor="test", source="t")
    return core


def _send(core: Core) -> UsncbRequest:
    case_id = open_case(core)
    assert core.click(actor=OFFICER, value=ActionValue(ActionId.validity_sent, case_id)).ok
    core.deliver_usncb()
    with Session(core.engine) as session:
        return session.exec(select(UsncbRequest)).one()


def test_the_webhook_presents_its_client_certificate(
    settings: Settings, clock: ManualClock, engine: Engine, pki: Path,
    liaison: tuple[str, list[str]]
) -> None:
    url, seen = liaison
    core = _core(settings, clock, engine, url, usncb_ca_bundle=str(pki / "ca.pem"),
                 usncb_client_cert=str(pki / "client.pem"),
                 usncb_client_key=str(pki / "client.key"))
    request = _send(core)
    assert request.delivery == "delivered" and request.reference == "US-TLS-1"
    assert seen == ["noticebot"]


def test_without_a_client_certificate_the_liaison_refuses(
    settings: Settings, clock: ManualClock, engine: Engine, pki: Path,
    liaison: tuple[str, list[str]]
) -> None:
    url, seen = liaison
    core = _core(settings, clock, engine, url, usncb_ca_bundle=str(pki / "ca.pem"))
    request = _send(core)
    assert request.delivery == "failed" and seen == []


def test_a_server_outside_the_ca_bundle_is_not_trusted(
    settings: Settings, clock: ManualClock, engine: Engine, pki: Path,
    liaison: tuple[str, list[str]]
) -> None:
    url, seen = liaison
    core = _core(settings, clock, engine, url, usncb_client_cert=str(pki / "client.pem"),
                 usncb_client_key=str(pki / "client.key"))  # the system's trust store
    request = _send(core)
    assert request.delivery == "failed" and "network error" in (request.delivery_error or "")
    assert seen == []


def test_tls_files_are_checked_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NOTICEBOT_USNCB_CLIENT_CERT", str(tmp_path / "absent.pem"))
    with pytest.raises(SettingsError, match=r"NOTICEBOT_USNCB_CLIENT_CERT: .*is not a readable"):
        load_settings(_env_file=None)
