"""The benchmark harness's own arithmetic and bookkeeping (the benchmarks themselves run in
`python -m bench`, never as timed unit tests)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

import bench.__main__ as bench_main
from bench.__main__ import _previous
from bench.harness import Result, percentile, table


def test_percentiles_interpolate_between_samples() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == pytest.approx(50.5)
    assert percentile(samples, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_table_marks_missed_and_unjudged_targets() -> None:
    shown = table([Result("P4", "digests", 12.5, "s", "≤ 10 s", False),
                   Result("P4", "digests (quick)", 0.4, "s", "≤ 10 s", None)])
    lines = shown.splitlines()
    assert lines[2].split()[-1] == "NO" and lines[3].split()[-1] == "—"


def test_a_partial_run_keeps_the_other_benchmarks_of_the_same_mode(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"quick": False, "benchmarks": {
        "sweep": {"results": []}, "gone": {"results": []}}}))
    assert _previous(path, quick=False) == {"benchmarks": {"sweep": {"results": []}}}
    assert _previous(path, quick=True) == {"benchmarks": {}}  # quick never mixes with full
    assert _previous(tmp_path / "missing.json", quick=False) == {"benchmarks": {}}


def test_each_entry_says_which_machine_and_commit_measured_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "results.json"
    earlier = {"machine": {"cpu": "elsewhere", "commit": "0000000"}, "postgres": True,
               "written": "2026-11-23T10:00:00+00:00"}
    path.write_text(json.dumps({"quick": False, **earlier, "benchmarks": {
        "sweep": {"seconds": 1.0, "run": earlier, "results": []}}}))
    found = Result("P4", "digests", 2.0, "s", "≤ 10 s", True)
    monkeypatch.setattr(bench_main, "importlib", SimpleNamespace(
        import_module=lambda name: SimpleNamespace(run=lambda bench: [found])))
    monkeypatch.setattr(bench_main, "machine", lambda: {"cpu": "here", "commit": "1234567"})
    bench_main.main(["--only", "digest", "--out", str(path), "--postgres", ""])
    report = json.loads(path.read_text())
    assert report["benchmarks"]["sweep"]["run"] == earlier  # kept as it was measured
    digest = report["benchmarks"]["digest"]
    assert digest["run"]["machine"] == {"cpu": "here", "commit": "1234567"}
    assert digest["run"]["postgres"] is False and digest["results"][0]["value"] == 2.0
    assert report["machine"] == digest["run"]["machine"]  # the top level: the latest run
