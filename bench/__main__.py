"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, print a table, and write
`bench/results.json` (a partial run with --only updates just its own entries)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Bench, Result, machine, table

# name → module under bench/ with `run(bench) -> list[Result]`, in the order they run.
BENCHMARKS = {
    "latency": "P1/P2 ack and submit latency of `noticebot serve` vs a bare Bolt app",
    "sweep": "P3 reminder sweep over 10,000 vs 1,000,000 rows",
    "digest": "P4 weekly digests, 500 managers over 100,000 cases",
    "fanout": "P5 1,000 messages over 100 rate-limited channels",
    "verify": "P6 append and verify 1,000,000 record entries",
    "tree": "T1-T4 Merkle tree: incremental vs full verify, append cost, inclusion proofs",
    "faults": "R5/R6 replicas and a killed relay under injected Slack failures",
    "teams": "TP1 Teams invoke latency of the Teams app vs a bare Teams SDK app",
    "teams_fanout": "TP2 Teams fan-out: 1,000 messages over 100 rate-limited threads",
}
RESULTS = Path(__file__).parent / "results.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke run for CI (targets are not judged)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), metavar="NAME",
                        help=f"run only these: {', '.join(BENCHMARKS)}")
    parser.add_argument("--postgres", default=os.environ.get("NOTICEBOT_TEST_DATABASE_URL"),
                        help="PostgreSQL URL for the PostgreSQL runs (default: "
                             "$NOTICEBOT_TEST_DATABASE_URL; without one they are skipped)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    names = args.only or list(BENCHMARKS)
    postgres = args.postgres if args.postgres and args.postgres.startswith("postgresql") else None

    report: dict[str, Any] = _previous(args.out, quick=args.quick)
    # Each entry says where and when it was measured: a partial run (`--only`) keeps the
    # other entries, which another machine or commit may have measured. The top level
    # describes the latest run.
    run = {"machine": machine(), "postgres": bool(postgres),
           "written": datetime.now(UTC).isoformat(timespec="seconds")}
    report.update(quick=args.quick, **run)
    failed = []
    with tempfile.TemporaryDirectory(prefix="noticebot-bench-") as scratch:
        bench = Bench(quick=args.quick, workdir=Path(scratch), postgres_url=postgres)
        for name in names:
            print(f"== {name}: {BENCHMARKS[name]}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            try:
                module = importlib.import_module(f"bench.{name}")
                results: list[Result] = module.run(bench)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                report["benchmarks"][name] = {"error": traceback.format_exc(limit=3),
                                              "run": run}
                continue
            seconds = round(time.perf_counter() - started, 1)
            report["benchmarks"][name] = {"seconds": seconds, "run": run,
                                          "results": [asdict(r) for r in results]}
            print(table(results), file=sys.stderr, flush=True)

    args.out.write_text(json.dumps(report, indent=2) + "\n")
    everything = [Result(**r) for entry in report["benchmarks"].values()
                  for r in entry.get("results", [])]
    print(table(everything))
    print(f"\nwritten: {args.out}")
    if failed:
        print(f"benchmarks that crashed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _previous(path: Path, *, quick: bool) -> dict[str, Any]:
    """An earlier report of the same mode, so `--only` replaces just its own entries."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        earlier = {}
    if earlier.get("quick") != quick or not isinstance(earlier.get("benchmarks"), dict):
        return {"benchmarks": {}}
    return {"benchmarks": {k: v for k, v in earlier["benchmarks"].items() if k in BENCHMARKS}}


if __name__ == "__main__":
    sys.exit(main())
