"""The layers hold (docs/architecture.md): import-linter's contracts in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    # Its own process: grimp builds the graph from the files, not from what tests imported.
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is in the test extra"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_source_module_is_longer_than_500_lines() -> None:
    """Small one-concept modules: a module past 500 lines is doing more than one thing."""
    root = Path(__file__).resolve().parent.parent
    long = {str(path.relative_to(root)): n
            for package in ("bot", "handlers", "storage", "config", "bench")
            for path in (root / package).rglob("*.py")
            if (n := len(path.read_text().splitlines())) > 500}
    assert long == {}
