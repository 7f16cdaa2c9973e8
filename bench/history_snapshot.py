"""What a pipeline decided, as a diffable file: the check that a refactor changed no behaviour.

`dump` writes the deterministic columns of the metric history (evaluations, drift reports,
promotions, training runs) of one warehouse to JSON; timestamps, run ids and timings are
left out because they differ between two runs of the same code on the same data.
`compare` reports every row that differs between two dumps and exits non-zero if any does.

    python -m bench.history_snapshot dump --db HOME/warehouse.duckdb --out before.json
    python -m bench.history_snapshot compare before.json after.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import duckdb

# Promotions keep their order of creation: the sequence of decisions is part of behaviour.
QUERIES = {
    "model_evaluations": """
        SELECT model_family, model_version, trained_through, eval_month, eval_set, n,
               accuracy, macro_f1, precision_negative, recall_negative, precision_positive,
               recall_positive
        FROM metrics.model_evaluations ORDER BY ALL""",
    "drift_reports": """
        SELECT month, reference, statistic, kind, value, threshold, p_value, drifted, severity,
               detail, champion_version
        FROM metrics.drift_reports ORDER BY ALL""",
    "promotions": """
        SELECT model_version, model_family, trained_through, decision, champion_version,
               champion_score, challenger_score, metric, margin, eval_month, n_eval, reason
        FROM metrics.promotions ORDER BY created_at""",
    "training_runs": """
        SELECT model_family, model_version, trained_through, window_start, n_train,
               n_validation, val_accuracy, val_macro_f1, bundle_version
        FROM metrics.training_runs ORDER BY ALL""",
}
DIGITS = 9


def _plain(value: object) -> object:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, DIGITS)
    if value is None or isinstance(value, int | str | bool):
        return value
    return str(value)


def snapshot(db: Path) -> dict[str, list[dict]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {}
        for name, sql in QUERIES.items():
            cursor = con.execute(sql)
            columns = [d[0] for d in cursor.description]
            tables[name] = [
                {c: _plain(v) for c, v in zip(columns, row, strict=True)}
                for row in cursor.fetchall()
            ]
        return tables
    finally:
        con.close()


def differences(before: dict, after: dict) -> list[str]:
    found = []
    for name in QUERIES:
        old, new = before.get(name, []), after.get(name, [])
        if len(old) != len(new):
            found.append(f"{name}: {len(old)} rows before, {len(new)} after")
        for index, (a, b) in enumerate(zip(old, new, strict=False)):
            if a != b:
                changed = {
                    k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)
                }
                found.append(f"{name} row {index}: {changed}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dump = commands.add_parser("dump")
    dump.add_argument("--db", required=True, type=Path)
    dump.add_argument("--out", required=True, type=Path)
    compare = commands.add_parser("compare")
    compare.add_argument("before", type=Path)
    compare.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "dump":
        tables = snapshot(args.db)
        args.out.write_text(json.dumps(tables, indent=1, sort_keys=True) + "\n")
        print(", ".join(f"{name}: {len(rows)} rows" for name, rows in tables.items()))
        return 0
    before = json.loads(args.before.read_text())
    after = json.loads(args.after.read_text())
    found = differences(before, after)
    for line in found:
        print(line)
    counts = ", ".join(f"{name} {len(rows)}" for name, rows in before.items())
    print(f"{'DIFFERENT' if found else 'identical'}: {len(found)} differences ({counts} rows)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
