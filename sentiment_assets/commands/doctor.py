"""`sentiment doctor`: every store of the home checked, each reported ok or damaged.

Reads only (read-only connections, SQLite's own quick check), so it is safe beside a
running pipeline; a store another process holds is reported busy, not damaged. `--repair`
removes what is safe to remove because it is rebuilt (damaged cached ONNX graphs) before
checking.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.encoding.onnx_encoder import cached_graphs, graph_problem
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.store.damage import (
    INSTANCE_NEXT_STEP,
    RESTORE_HINT,
    WAREHOUSE_NEXT_STEP,
    first_line,
    instance_files,
    is_duckdb_damage,
    scan_duckdb,
    sqlite_path,
    sqlite_problem,
)
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.backup import list_backups
from sentiment_assets.lib.versions.publish import HISTORY_TABLES, champion_file, history_dir

OK, DAMAGED, BUSY = "ok", "DAMAGED", "busy"
ONNX_NEXT_STEP = "`sentiment doctor --repair` removes it; the next load exports it again"
# An export writes the graph, then its manifest: a graph this young without one is not damaged.
EXPORT_GRACE_S = 60.0


@dataclass(frozen=True)
class Finding:
    store: str
    path: Path
    state: str
    detail: str
    next_step: str = ""

    def line(self) -> str:
        text = f"{self.state:<8} {self.store:<10} {self.path}: {self.detail}"
        return f"{text} -> {self.next_step}" if self.next_step else text


def check_warehouse(settings: Settings) -> Finding:
    path = settings.warehouse_path
    if not path.exists():
        return Finding("warehouse", path, OK, "none yet (`sentiment pipeline` builds it)")
    if settings.uses_lake:
        return _check_lake(path)
    try:
        counts = scan_duckdb(path)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            return Finding("warehouse", path, BUSY, "held by a writer: not checked", "run again")
        return Finding("warehouse", path, DAMAGED, first_line(error), WAREHOUSE_NEXT_STEP)
    except duckdb.Error as error:
        if not is_duckdb_damage(error):
            raise
        return Finding("warehouse", path, DAMAGED, first_line(error), WAREHOUSE_NEXT_STEP)
    rows = sum(c.rows for c in counts)
    return Finding("warehouse", path, OK, f"{len(counts)} tables, {rows} rows, every block read")


def _check_lake(root: Path) -> Finding:
    files = [p for p in root.rglob("*.parquet") if not any(s.startswith(".") for s in p.parts)]
    for path in files:
        try:
            pq.read_table(path)
        except (OSError, pa.ArrowException) as error:
            return Finding("warehouse", path, DAMAGED, first_line(error), WAREHOUSE_NEXT_STEP)
    return Finding("warehouse", root, OK, f"lake: {len(files)} Parquet files read")


def check_mlflow(settings: Settings) -> Finding:
    path = sqlite_path(settings.mlflow_tracking_uri)
    where = path or Path(settings.mlflow_tracking_uri)
    if path is not None:
        if not path.exists():
            return Finding("mlflow", path, OK, "none yet (`sentiment pipeline` makes it)")
        problem = sqlite_problem(path)
        if problem:
            return Finding("mlflow", path, DAMAGED, problem, RESTORE_HINT)
    try:
        client = MlflowClient(settings.mlflow_tracking_uri)
        versions = registry.all_versions(client)
        champion = registry.champion(client)
    except MlflowException as error:
        return Finding("mlflow", where, DAMAGED, first_line(error), RESTORE_HINT)
    missing = [v.version for v in versions if _local_source_missing(v.source)]
    if missing:
        return Finding(
            "mlflow", where, DAMAGED, f"versions {missing} lack their artifacts", RESTORE_HINT
        )
    who = f"champion v{champion.version}" if champion else "no champion yet"
    return Finding("mlflow", where, OK, f"{len(versions)} registry versions, {who}")


def _local_source_missing(source: str) -> bool:
    """A version whose `file:` artifact folder is gone (a server's sources are its own)."""
    if not source.startswith("file:"):
        return False
    return not Path(source.removeprefix("file://").removeprefix("file:")).is_dir()


def check_instance(settings: Settings) -> Finding:
    home = settings.dagster_home
    for path in instance_files(home):
        problem = sqlite_problem(path)
        if problem:
            return Finding("instance", path, DAMAGED, problem, INSTANCE_NEXT_STEP)
    if not (home / "dagster.yaml").exists():
        return Finding("instance", home, OK, "none yet (any `sentiment` command makes it)")
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            runs = instance.get_runs_count()
    except Exception as error:  # whatever the storage raises, the instance cannot be used
        return Finding("instance", home, DAMAGED, first_line(error), INSTANCE_NEXT_STEP)
    return Finding("instance", home, OK, f"{runs} runs recorded")


def check_published(settings: Settings) -> Finding:
    folder = settings.published_dir
    republish = "`sentiment publish` writes it again from the warehouse"
    rows = 0
    for name in HISTORY_TABLES:
        path = history_dir(folder) / f"{name}.parquet"
        if not path.exists():
            continue
        try:
            rows += pq.read_table(path).num_rows
        except (OSError, pa.ArrowException) as error:
            return Finding("published", path, DAMAGED, first_line(error), republish)
    champion = champion_file(folder)
    if champion.exists():
        try:
            version = json.loads(champion.read_text(encoding="utf-8"))["version"]
        except (OSError, ValueError, KeyError) as error:
            return Finding("published", champion, DAMAGED, first_line(error), "`sentiment prepare`")
        return Finding("published", folder, OK, f"{rows} history rows, champion.json v{version}")
    return Finding("published", folder, OK, f"{rows} history rows, no champion.json yet")


def check_caches(settings: Settings) -> Finding:
    cache = settings.registry_cache_dir
    bundles = sorted(p for p in cache.glob("v*") if p.is_dir()) if cache.is_dir() else []
    for bundle in bundles:
        try:
            json.loads((bundle / "card.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return Finding(
                "caches",
                bundle,
                DAMAGED,
                first_line(error),
                f"remove {bundle}: it is fetched again",
            )
    return Finding("caches", cache, OK, f"{len(bundles)} cached bundles readable")


def damaged_graphs(settings: Settings) -> list[tuple[Path, str]]:
    """Cached ONNX graphs that cannot be used, with why. A graph written less than a minute
    ago may still be waiting for its manifest (an export in progress)."""
    found = []
    for path in cached_graphs(settings.onnx_cache_dir):
        problem = graph_problem(path)
        if problem and not (_just_written(path) and problem == "no manifest beside it"):
            found.append((path, problem))
    return found


def _just_written(path: Path) -> bool:
    return time.time() - path.stat().st_mtime < EXPORT_GRACE_S


def check_onnx_cache(settings: Settings) -> Finding:
    folder = settings.onnx_cache_dir
    damaged = damaged_graphs(settings)
    if damaged:
        (path, problem), others = damaged[0], len(damaged) - 1
        more = f" (and {others} more)" if others else ""
        return Finding("onnx", path, DAMAGED, problem + more, ONNX_NEXT_STEP)
    return Finding("onnx", folder, OK, f"{len(cached_graphs(folder))} cached graphs intact")


def repair_onnx_cache(settings: Settings) -> list[Path]:
    """Remove the damaged cached graphs and their manifests: the next load exports them again."""
    removed = []
    for path, _ in damaged_graphs(settings):
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        removed.append(path)
    return removed


def check_backups(settings: Settings) -> Finding:
    found = list_backups(settings)
    if not found:
        return Finding("backups", settings.home / "backups", OK, "none", "`sentiment backup`")
    return Finding("backups", found[-1].path, OK, f"{len(found)}, newest {found[-1].describe()}")


CHECKS = (
    check_warehouse,
    check_mlflow,
    check_instance,
    check_published,
    check_caches,
    check_onnx_cache,
)


def diagnose(settings: Settings) -> list[Finding]:
    return [check(settings) for check in CHECKS] + [check_backups(settings)]


def print_report(findings: list[Finding]) -> int:
    """Print one line per store; exit status 1 when any is damaged."""
    for finding in findings:
        print(finding.line())
    return 1 if any(f.state == DAMAGED for f in findings) else 0


def command_doctor(args: argparse.Namespace) -> int:
    """Check every store of the home (after `--repair`'s removals); exit 1 when one is
    damaged."""
    settings = current_settings()
    if args.repair:
        for path in repair_onnx_cache(settings):
            print(f"removed  onnx       {path}: damaged; exported again at the next load")
    return print_report(diagnose(settings))
