"""The lock is the one source of what gets installed: in the README's commands, in CI and in the
container. These checks fail when pyproject.toml changes without `.ci/lock`, or when an install
path stops going through the lock."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: tuple[str, ...]


def read_lock(path: Path) -> dict[str, Pin]:
    """name -> pin, for a hashed requirements file (continuation lines joined)."""
    pins: dict[str, Pin] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(HASH.sub("", line).strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pins[canonicalize_name(requirement.name)] = Pin(
            Version(specifier.version), tuple(HASH.findall(line)))
    return pins


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def declared(*, extras: tuple[str, ...] = ()) -> list[Requirement]:
    meta = project()
    groups = meta["dependency-groups"]
    assert isinstance(groups, dict)
    project_table = meta["project"]
    assert isinstance(project_table, dict)
    names = list(project_table["dependencies"]) + list(groups["build"])
    for extra in extras:
        names += project_table["optional-dependencies"][extra]
    return [Requirement(name) for name in names]


@pytest.mark.parametrize(("lock", "extras"), [("requirements.txt", ()),
                                              ("requirements-test.txt", ("test",))])
def test_every_declared_dependency_is_locked_within_its_range_with_hashes(
    lock: str, extras: tuple[str, ...]
) -> None:
    pins = read_lock(ROOT / lock)
    for requirement in declared(extras=extras):
        pin = pins.get(canonicalize_name(requirement.name))
        assert pin is not None, f"{requirement.name} is declared but not in {lock}: run .ci/lock"
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{lock} pins {requirement.name}=={pin.version}, outside {requirement.specifier}: "
            "run .ci/lock")
    assert all(pin.hashes for pin in pins.values()), f"{lock} has a pin without a hash"


def test_the_test_lock_extends_the_runtime_lock_with_the_same_pins() -> None:
    runtime = read_lock(ROOT / "requirements.txt")
    test = read_lock(ROOT / "requirements-test.txt")
    differing = {name: (pin.version, test.get(name)) for name, pin in runtime.items()
                 if name not in test or test[name].version != pin.version}
    assert not differing


def test_every_direct_dependency_has_an_upper_bound() -> None:
    # A new major (or 0.x minor) may break us: it arrives through a lock update, not by surprise.
    unbounded = [str(r) for r in declared(extras=("test",))
                 if r.name != "tzdata"  # time-zone data: newer is always what we want
                 and not any(s.operator in ("<", "<=", "==", "~=") for s in r.specifier)]
    assert not unbounded


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)\n```", (ROOT / "README.md").read_text(), flags=re.S)
    return blocks[:2]


def test_the_readme_starts_with_two_commands_that_install_from_the_lock() -> None:
    console, tests = readme_commands()
    for command, lock, last in ((console, "requirements.txt", "noticebot shell"),
                                (tests, "requirements-test.txt", "python -m pytest")):
        assert "\n" not in command, "each set-up is one line"
        assert command.startswith("python3 -m venv .venv && . .venv/bin/activate && ")
        assert f"python -m pip install --require-hashes -r {lock} && " in command
        assert "python -m pip install --no-deps --no-build-isolation -e . && " in command
        assert command.endswith(last)


def dockerfile_instructions() -> list[str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_the_container_installs_from_the_lock_as_a_numeric_user() -> None:
    instructions = dockerfile_instructions()
    runs = [line for line in instructions if line.startswith("RUN ")]
    installs = {part.split("&&")[0].strip()
                for run in runs for part in run.split("pip install ")[1:]}
    # pip pinned by version; every other package from the lock, hash-checked; then the
    # project itself with nothing resolved.
    pip_pin = {i for i in installs if re.fullmatch(r'"pip==\d+(\.\d+)+"', i)}
    assert len(pip_pin) == 1, installs
    assert installs - pip_pin == {"--require-hashes -r requirements.txt",
                                  "--no-deps --no-build-isolation ."}, installs
    users = [line.split(None, 1)[1] for line in instructions if line.startswith("USER ")]
    assert users and all(re.fullmatch(r"\d+:\d+", user) for user in users), users
    assert int(users[-1].split(":")[0]) >= 10000  # clear of system accounts on any host
    labels = " ".join(line for line in instructions if line.startswith("LABEL "))
    for key in ("version", "revision", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
