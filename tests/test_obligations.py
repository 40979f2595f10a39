"""docs/obligations.md is the project's own table of the directive's obligations (O1-O32): each
has its section, where the core enforces it and the tests that prove it. These checks keep the
table and the test suite honest with each other, and keep the repository self-contained."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "obligations.md"
IDS = range(1, 33)
ROW = re.compile(r"^\| O(\d+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \| ([^|]*) \|$")
LEADING_IDS = re.compile(r"^test_((?:o\d+_)+)")
TICKED = re.compile(r"`([^`]+)`")
# Not the project's own text: the environment, the version control and tool caches.
SKIPPED = {".venv", ".git", ".mypy_cache", ".ruff_cache", ".pytest_cache", "build", "dist"}


def rows() -> dict[int, tuple[str, str, str, str]]:
    found: dict[int, tuple[str, str, str, str]] = {}
    for line in DOC.read_text("utf-8").splitlines():
        match = ROW.match(line)
        if match:
            number = int(match.group(1))
            assert number not in found, f"O{number} is listed twice"
            found[number] = (match.group(2).strip(), match.group(3).strip(),
                             match.group(4).strip(), match.group(5).strip())
    return found


def named_ids(test_name: str) -> list[int]:
    """The obligation ids a test names first: test_o3_o24_documents_... -> [3, 24]."""
    match = LEADING_IDS.match(test_name)
    return [int(n) for n in re.findall(r"o(\d+)_", match.group(1))] if match else []


def suite() -> dict[str, set[str]]:
    """Every test function, by the file (relative to the repository) it is in."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names = {node.name for node in ast.walk(ast.parse(path.read_text("utf-8")))
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                 and node.name.startswith("test_")}
        found[str(path.relative_to(ROOT))] = names
    return found


def test_every_obligation_is_in_the_table_once_with_its_section() -> None:
    table = rows()
    assert sorted(table) == list(IDS)
    for number, (section, obligation, enforced, _) in table.items():
        assert section.startswith("§"), number
        assert len(obligation.split()) >= 5, number
        assert enforced, number


def test_every_obligation_has_a_test_naming_it_and_no_test_names_an_unknown_id() -> None:
    named: dict[int, list[str]] = {}
    unknown = []
    for path, names in suite().items():
        for name in names:
            for number in named_ids(name):
                if number not in IDS:
                    unknown.append(f"{path}::{name}")
                named.setdefault(number, []).append(name)
    assert unknown == [], f"tests name obligations that do not exist: {unknown}"
    untested = [f"O{n}" for n in IDS if n not in named]
    assert untested == [], f"obligations without a test naming them: {untested}"


def test_tests_listed_in_the_table_exist_and_name_their_obligation() -> None:
    found = suite()
    for number, (_, _, _, listed) in rows().items():
        cited = TICKED.findall(listed)
        assert cited, f"O{number} lists no test"
        for reference in cited:
            path, _, name = reference.partition("::")
            assert name in found.get(path, set()), f"O{number}: {reference} does not exist"
            assert number in named_ids(name), f"O{number}: {name} does not name O{number}"


def test_enforcement_cells_point_at_code_that_exists() -> None:
    """Each `path` exists, and each `name` after it is defined in it."""
    for number, (_, _, enforced, _) in rows().items():
        current: Path | None = None
        for token in TICKED.findall(enforced):
            if "/" in token or token.endswith(".py"):
                current = ROOT / token
                assert current.exists(), f"O{number}: {token} does not exist"
                continue
            if current is None or current.suffix != ".py":
                continue  # a name in prose, e.g. "migration `0008`"
            bare = re.split(r"[\[( ]", token)[0].split(".")[-1]
            defined = re.search(rf"^\s*(def|class) {re.escape(bare)}\b|^{re.escape(bare)}\b.*=",
                                current.read_text("utf-8"), re.MULTILINE)
            assert defined, f"O{number}: {bare} is not defined in {current.relative_to(ROOT)}"


def test_the_repository_cites_only_itself() -> None:
    """Code, docs and help texts cite docs/obligations.md, never files outside the repository."""
    outside = ("/work/" + "shared", "../" + "shared", "SPEC" + ".md", "SPEC" + " §", "NOTES" + ":",
               "NOTES" + " \"")
    offenders = []
    for path in sorted(ROOT.rglob("*")):
        parts = path.relative_to(ROOT).parts
        if (not path.is_file() or parts[0] in SKIPPED or "egg-info" in parts[0]
                or path.suffix not in (".py", ".md", ".toml", ".yaml", ".txt", ".cfg", "")
                or "__pycache__" in parts or path.name.startswith("requirements")):
            continue
        text = path.read_text("utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {needle}" for needle in outside
                      if needle in text]
    assert offenders == []


def test_ids_are_read_from_the_front_of_a_test_name() -> None:
    assert named_ids("test_o21_inactive_notice_closes_case") == [21]
    assert named_ids("test_o3_o24_documents_not_requested") == [3, 24]
    assert named_ids("test_o13_o32_no_response_and_o7_necessity") == [13, 32]
    assert named_ids("test_outbox_rows_are_claimed") == []
    assert named_ids("test_o33_made_up") == [33]  # which the check above then reports
