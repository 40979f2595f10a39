"""Clouds, start-up refusals, the app package and `noticebot teams` on its own."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from microsoft_teams.api.auth.cloud_environment import PUBLIC, US_GOV, US_GOV_DOD
from pydantic import SecretStr

from config.settings import Environment, Settings
from config.teams import TeamsCloud, TeamsSettings
from handlers.cli import main
from handlers.teams.app import TeamsSettingsError, check_settings
from handlers.teams.clouds import environment
from handlers.teams.package import COMMANDS, MANIFEST_VERSION
from tests.handlers.teams.conftest import TeamsUser, teams_settings
from tests.handlers.teams.fake_teams import APP_ID, TENANT
from tests.helpers import OFFICER


@pytest.mark.parametrize(("cloud", "preset", "issuer", "scope"), [
    (TeamsCloud.public, PUBLIC, "https://api.botframework.com",
     "https://api.botframework.com/.default"),
    (TeamsCloud.gcc, PUBLIC, "https://api.botframework.com",
     "https://api.botframework.com/.default"),
    (TeamsCloud.gcc_high, US_GOV, "https://api.botframework.us",
     "https://api.botframework.us/.default"),
    (TeamsCloud.dod, US_GOV_DOD, "https://api.botframework.us",
     "https://api.botframework.us/.default"),
])
def test_each_cloud_brings_its_issuer_scope_authority_and_metadata(
        cloud: TeamsCloud, preset: object, issuer: str, scope: str) -> None:
    env = environment(cloud)
    assert env is preset
    assert env.token_issuer == issuer and env.bot_scope == scope
    settings = teams_settings(cloud=cloud)
    assert settings.login_authority() == f"{env.login_endpoint}/{TENANT}"
    gov = cloud in (TeamsCloud.gcc_high, TeamsCloud.dod)
    assert ("azure.us" in env.openid_metadata_url) is gov
    assert (".us/" in settings.fallback_service_url() + "/") is gov


def test_a_cloud_authority_mismatch_is_refused_at_start(settings: Settings) -> None:
    wrong = teams_settings(cloud=TeamsCloud.gcc_high,
                           authority=f"https://login.microsoftonline.com/{TENANT}")
    with pytest.raises(TeamsSettingsError, match="NOTICEBOT_TEAMS_AUTHORITY"):
        check_settings(settings.model_copy(update={"teams": wrong}))
    right = teams_settings(cloud=TeamsCloud.gcc_high,
                           authority=f"https://login.microsoftonline.us/{TENANT}")
    check_settings(settings.model_copy(update={"teams": right}))


@pytest.mark.parametrize("authority", [
    "https://login.microsoftonline.us",  # no tenant: MSAL would refuse every token
    "https://login.microsoftonline.us/common",  # not this single-tenant registration's
    "https://login.microsoftonline.us/00000000-0000-0000-0000-000000000000",
    f"http://login.microsoftonline.us/{TENANT}",
    f"https://login.microsoftonline.us/{TENANT}/v2.0",
])
def test_an_authority_that_would_fail_every_token_is_refused_at_start(
        settings: Settings, authority: str) -> None:
    wrong = teams_settings(cloud=TeamsCloud.gcc_high, authority=authority)
    with pytest.raises(TeamsSettingsError, match=f"must be https://login.microsoftonline.us/"
                                                 f"{TENANT}"):
        check_settings(settings.model_copy(update={"teams": wrong}))


def test_unauthenticated_dev_mode_is_refused_in_production(settings: Settings) -> None:
    dev = teams_settings(allow_unauthenticated=True)
    check_settings(settings.model_copy(update={"teams": dev}))  # development: allowed
    production = settings.model_copy(update={"teams": dev,
                                             "environment": Environment.production})
    with pytest.raises(TeamsSettingsError, match="ALLOW_UNAUTHENTICATED"):
        check_settings(production)


def test_credentials_are_required_unless_in_dev_mode(settings: Settings) -> None:
    bare = TeamsSettings(_env_file=None)
    with pytest.raises(TeamsSettingsError) as raised:
        check_settings(settings.model_copy(update={"teams": bare}))
    for name in ("CLIENT_ID", "TENANT_ID", "CLIENT_SECRET"):
        assert f"NOTICEBOT_TEAMS_{name}" in str(raised.value)


def test_teams_settings_come_from_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_TEAMS_CLOUD", "gcc_high")
    monkeypatch.setenv("NOTICEBOT_TEAMS_CLIENT_SECRET", "s3cret")
    loaded = Settings(_env_file=None).teams
    assert loaded.cloud is TeamsCloud.gcc_high
    assert isinstance(loaded.client_secret, SecretStr) and "s3cret" not in repr(loaded)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_package_writes_manifest_and_both_icons(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_TEAMS_CLIENT_ID", APP_ID)
    monkeypatch.setenv("NOTICEBOT_TEAMS_PUBLIC_HOST", "noticebot.agency.gov")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["teams", "package", "--out", "pkg"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "pkg"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["manifestVersion"] == MANIFEST_VERSION == "1.10"
    assert MANIFEST_VERSION in manifest["$schema"]
    assert manifest["id"] == manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == ["noticebot.agency.gov"]
    lists = {s: c for entry in manifest["bots"][0]["commandLists"] for s in entry["scopes"]
             for c in [entry["commands"]]}
    assert {c["title"] for c in lists["team"]} == {t for t, _ in COMMANDS}
    assert "notice home" in {c["title"] for c in lists["personal"]}
    for commands in lists.values():
        assert len(commands) <= 10
        assert all(len(c["title"]) <= 32 and len(c["description"]) <= 128 for c in commands)
    assert png_size((folder / "color.png").read_bytes()) == (192, 192)
    assert png_size((folder / "outline.png").read_bytes()) == (32, 32)
    with zipfile.ZipFile(folder / "noticebot-teams.zip") as bundle:
        assert sorted(bundle.namelist()) == ["color.png", "manifest.json", "outline.png"]


def test_package_names_what_is_missing(tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("NOTICEBOT_TEAMS_CLIENT_ID", "NOTICEBOT_TEAMS_PUBLIC_HOST"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["teams", "package", "--out", "pkg"])
    assert result.exit_code != 0 and "NOTICEBOT_TEAMS_PUBLIC_HOST" in result.output


def test_package_refuses_what_an_upload_would_refuse(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTICEBOT_TEAMS_CLIENT_ID", APP_ID)
    monkeypatch.setenv("NOTICEBOT_TEAMS_PUBLIC_HOST", "http://noticebot.agency.gov")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [
        "teams", "package", "--out", "pkg", "--version", "2",
        "--developer", "U.S. Immigration and Customs Enforcement",
        "--privacy", "http://agency.gov/privacy"])
    assert result.exit_code != 0
    for named in ("NOTICEBOT_TEAMS_PUBLIC_HOST", "--version (2)", "--developer must be 1 to 32",
                  "--privacy (http://agency.gov/privacy)"):
        assert named in result.output, named
    assert not (tmp_path / "pkg").exists()  # nothing half-written


def test_healthz_and_readyz_answer_beside_the_bot(teams: TeamsUser) -> None:
    from bot.clock import SystemClock
    from bot.ops.probes import Readiness
    from handlers.teams.app import add_ops

    add_ops(teams.client.web, readiness=Readiness(teams.core.engine), clock=SystemClock())
    assert teams.client.get("/healthz").json() == {"status": "ok"}
    assert teams.client.get("/livez").status_code == 200


def test_a_reply_teams_does_not_take_still_answers_200(teams: TeamsUser) -> None:
    """The command is on the record either way; a 500 would make Teams say the app failed."""
    teams.fake.failures += [(403, {})]
    assert teams.say(OFFICER, "notice help").status_code == 200
    assert teams.fake.calls and teams.fake.calls[-1].path.endswith("/activities")


@pytest.mark.parametrize(("cloud", "service_url", "refused"), [
    (TeamsCloud.gcc_high, "https://smba.trafficmanager.net/teams", True),
    (TeamsCloud.dod, "https://smba.infra.gcc.teams.microsoft.com/teams", True),
    (TeamsCloud.public, "https://smba.infra.gov.teams.microsoft.us/teams", True),
    (TeamsCloud.gcc, "https://smba.infra.dod.teams.microsoft.us/", True),
    (TeamsCloud.gcc_high, "https://smba.infra.gov.teams.microsoft.us/teams", False),
    (TeamsCloud.gcc, "https://smba.infra.gcc.teams.microsoft.com/amer/", False),
    (TeamsCloud.public, "https://smba.trafficmanager.net/amer/", False),
    (TeamsCloud.gcc_high, "https://bots.agency.example/teams", False),  # not Microsoft's: allowed
])
def test_a_service_url_of_the_other_side_of_the_clouds_is_refused_at_start(
        settings: Settings, cloud: TeamsCloud, service_url: str, refused: bool) -> None:
    said = teams_settings(cloud=cloud, service_url=service_url).problems(production=True)
    if not refused:
        assert said == []
        return
    (problem,) = said
    side = "commercial" if cloud in (TeamsCloud.gcc_high, TeamsCloud.dod) else "government"
    assert problem.startswith(f"NOTICEBOT_TEAMS_SERVICE_URL ({service_url.split('/')[2]}) is a "
                              f"{side} Teams host, not one of NOTICEBOT_TEAMS_CLOUD={cloud.value}")
    with pytest.raises(TeamsSettingsError, match="NOTICEBOT_TEAMS_SERVICE_URL"):
        check_settings(settings.model_copy(update={
            "teams": teams_settings(cloud=cloud, service_url=service_url)}))
