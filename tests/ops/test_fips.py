"""NOTICEBOT_REQUIRE_FIPS=true: no start unless every OpenSSL in use reports FIPS mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.ops import fips
from handlers.cli import main


def test_refused_naming_each_library_not_in_fips_mode(empty_cwd: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fips, "posture", lambda: [
        fips.Library("python ssl/hashlib", "OpenSSL 3.0.13", True),
        fips.Library("cryptography", "OpenSSL 3.4.0 (bundled)", False)])
    result = CliRunner(env={"NOTICEBOT_REQUIRE_FIPS": "true"}).invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "NOTICEBOT_REQUIRE_FIPS is true but OpenSSL is not in FIPS mode for: " \
           "cryptography (OpenSSL 3.4.0 (bundled))" in result.output
    assert "python ssl" not in result.output
    assert list(empty_cwd.iterdir()) == []  # refused before touching anything


def test_starts_when_every_library_is_in_fips_mode(empty_cwd: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fips, "posture", lambda: [
        fips.Library("python ssl/hashlib", "OpenSSL 3.0.13", True),
        fips.Library("cryptography", "OpenSSL 3.0.13", True)])
    result = CliRunner(env={"NOTICEBOT_REQUIRE_FIPS": "true"}).invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output


def test_the_real_posture_is_reported() -> None:
    names = [lib.name for lib in fips.posture()]
    assert names == ["python ssl/hashlib", "cryptography"]
    assert all(lib.openssl.startswith("OpenSSL") for lib in fips.posture())


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["teams"],
                                     ["teams", "package", "--out", "pkg"]], ids=" ".join)
def test_every_process_refuses_to_start_out_of_fips_mode(
        empty_cwd: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setattr(fips, "posture", lambda: [
        fips.Library("cryptography", "OpenSSL 3.4.0 (bundled)", False)])
    result = CliRunner(env={"NOTICEBOT_REQUIRE_FIPS": "true"}).invoke(main, command)
    assert result.exit_code == 1
    assert "NOTICEBOT_REQUIRE_FIPS is true but OpenSSL is not in FIPS mode for: " \
           "cryptography (OpenSSL 3.4.0 (bundled))" in result.output
    assert list(empty_cwd.iterdir()) == []
