"""`make chaos`: the failure scenarios (tests marked `reliability`) run for real, as a table.

Each scenario is a test under tests/ marked `reliability`: kill -9 at each step then a plain
rerun, simultaneous first starts, Ctrl-C/SIGTERM while waiting on a pool, queries during
writes, bad and out-of-range files, new months arriving. This runs them, writes
bench/results/chaos.md (scenario, outcome, seconds, and what the test measured)
and exits non-zero if any failed. A test reports what it measured (recovery time, latency,
failures) with pytest's `record_property("measured", ...)`. `--only NAME` runs the scenarios
whose test or file name contains NAME (pytest's -k) and prints their table instead of
rewriting the recorded one.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from bench.machine import describe, one_line


def outcome(case: ET.Element) -> str:
    for tag, word in (("failure", "FAILED"), ("error", "ERROR"), ("skipped", "skipped")):
        found = case.find(tag)
        if found is not None:
            message = (found.get("message") or "").splitlines()[0][:80] if word == "skipped" else ""
            return f"{word} {message}".strip()
    return "passed"


def rows(junit: Path) -> list[dict]:
    found = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        properties = {p.get("name"): p.get("value") for p in case.iter("property")}
        found.append(
            {
                "scenario": f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}",
                "outcome": outcome(case),
                "seconds": float(case.get("time") or 0),
                "measured": properties.get("measured", ""),
            }
        )
    return found


def markdown(found: list[dict], machine: dict) -> str:
    """The table of `found` scenarios, headed by when and on which `machine` they ran."""
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {one_line(machine)}; "
        "`make chaos` rewrites it.",
        "",
        "| scenario | outcome | seconds | measured |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{r['scenario']}` | {r['outcome']} | {r['seconds']:.1f} | {r['measured'] or '-'} |"
        for r in found
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="default: bench/results/chaos.md")
    parser.add_argument(
        "--only", metavar="NAME", help="only the scenarios whose name contains NAME"
    )
    args = parser.parse_args(argv)
    if args.out is None and not args.only:
        args.out = Path("bench/results/chaos.md")
    selection = ["-k", args.only] if args.only else []
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "chaos.xml"
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-m",
                "reliability",
                *selection,
                "-p",
                "no:cacheprovider",
                "--timeout",
                "1800",
                f"--junitxml={junit}",
                # record_property's values reach the XML only in the legacy schema.
                "-o",
                "junit_family=legacy",
            ],
            check=False,
        )
        found = rows(junit) if junit.exists() else []
    text = markdown(found, describe())
    if args.out is None:
        print(text, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"{len(found)} scenarios -> {args.out}")
    failed = [r for r in found if r["outcome"].startswith(("FAILED", "ERROR"))]
    return 1 if failed or finished.returncode != 0 or not found else 0


if __name__ == "__main__":
    sys.exit(main())
