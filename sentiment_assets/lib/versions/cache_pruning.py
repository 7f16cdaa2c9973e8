"""Pruning the local model caches: registry_cache/ (one bundle per version) and onnx_cache/.

Both grow by one bundle or graph (up to ~91 MB) per registered version. They keep the
champion, the previous champion (what a rollback goes back to, and what the app may still
serve until it reloads) and the newest N versions (the ones just trained, being scored or
being promoted); the rest go. Nothing is lost: a pruned version is still in MLflow, and
`registry.download_bundle` fetches it again (and the ONNX export is redone) the next time
something loads it.

Removal is a rename into a hidden staging folder of the same cache, then a delete, so a
reader sees a version's whole folder or none of it, never a half-deleted one. Anything the
pruner does not recognise (hidden staging entries, other files, a graph whose owner is
unknown) is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.promotion import previous_champion

_VERSION_FOLDER = re.compile(r"v(\d+)")


def versions_to_keep(
    all_versions: Iterable[str],
    champion: str | None,
    previous_champion: str | None,
    newest_n: int,
) -> set[str]:
    """The champion, the previous champion and the `newest_n` highest version numbers."""
    if newest_n < 0:
        raise ValueError(f"newest_n must be >= 0, got {newest_n}")
    numbers = sorted({int(v) for v in all_versions}, reverse=True)
    keep = {str(n) for n in numbers[:newest_n]}
    keep.update(str(int(v)) for v in (champion, previous_champion) if v is not None)
    return keep


def _prunable(version: int, keep: Collection[str]) -> bool:
    """Whether the cached copy of `version` may go, given the versions to keep.

    A version numbered above every kept one was registered after the caller listed the
    registry (a training step running now): it is the newest, so it stays (with at least
    one newest version kept, max(keep) is the newest version the caller knew). With nothing
    to keep, nothing is known, and nothing goes.
    """
    kept = {int(v) for v in keep}
    return bool(kept) and version not in kept and version < max(kept)


def _version_of_folder(name: str) -> int | None:
    match = _VERSION_FOLDER.fullmatch(name)
    return int(match.group(1)) if match else None


def prune_registry_cache(cache_dir: Path, keep: Collection[str]) -> list[str]:
    """Remove the cached bundles (`v<N>` folders) of versions not in `keep`; returns their
    names. Hidden entries (downloads and saves in progress) and other names are untouched."""
    removed: list[str] = []
    if not cache_dir.is_dir():
        return removed
    for entry in sorted(cache_dir.iterdir()):
        version = _version_of_folder(entry.name)
        if version is None or not entry.is_dir() or not _prunable(version, keep):
            continue
        if _retire(cache_dir, [entry]):
            removed.append(entry.name)
    return removed


def graph_owner(manifest: dict, registry_cache_dir: Path) -> int | None:
    """The registry version an ONNX graph was exported from, when its manifest says so.

    Fine-tuned graphs record the weights file they were exported from (onnx_finetuned); one
    loaded from `registry_cache_dir/v<N>/` belongs to version N. Anything else (the encoder,
    weights loaded from elsewhere, a manifest from before owners were recorded) has no
    owner here and is kept.
    """
    if manifest.get("kind") != "finetuned" or not manifest.get("weights"):
        return None
    bundle = Path(manifest["weights"]).parent
    if bundle.parent.resolve() != registry_cache_dir.resolve():
        return None
    return _version_of_folder(bundle.name)


def prune_onnx_cache(onnx_dir: Path, registry_cache_dir: Path, keep: Collection[str]) -> list[str]:
    """Remove the ONNX graphs (and manifests) of fine-tuned versions not in `keep`; returns
    the graphs' names.

    Encoder graphs stay: they are shared by every embedding version trained on that encoder,
    and there is one per encoder, not one per version. A graph without a readable manifest
    may be an export in progress (the manifest is written after the graph): it stays too.
    """
    removed: list[str] = []
    if not onnx_dir.is_dir():
        return removed
    for graph in sorted(onnx_dir.glob("*.onnx")):
        if graph.name.startswith("."):
            continue  # an export being written (atomic.replacing)
        manifest = graph.with_suffix(".json")
        try:
            owner = graph_owner(json.loads(manifest.read_text()), registry_cache_dir)
        except (OSError, ValueError, AttributeError):
            continue
        if owner is None or not _prunable(owner, keep):
            continue
        # The graph first: without it `_cached` is false, so no reader trusts a lone manifest.
        if _retire(onnx_dir, [graph, manifest]):
            removed.append(graph.name)
    return removed


def _retire(cache_dir: Path, entries: list[Path]) -> bool:
    """Rename `entries` into a hidden staging folder of `cache_dir`, which is then deleted.

    Renames within a folder are atomic: a reader finds an entry whole or not at all. False
    when the first entry could not be moved (most often: another pruner got there first).
    What fails to delete stays hidden, and `registry.sweep_abandoned` removes it later.
    """
    with registry.staging_dir(cache_dir, f"pruned-{entries[0].name}") as staging:
        try:
            os.replace(entries[0], staging / entries[0].name)
        except OSError:
            return False
        for entry in entries[1:]:
            # A companion left behind (a manifest) is harmless without its main entry.
            with contextlib.suppress(OSError):
                os.replace(entry, staging / entry.name)
    return True


@dataclass(frozen=True)
class Pruned:
    """What one pruning did: the versions kept, the bundles and graphs removed, or why it
    did nothing."""

    kept: tuple[str, ...] = ()
    bundles: tuple[str, ...] = ()
    graphs: tuple[str, ...] = ()
    skipped: str | None = None

    def summary(self) -> str:
        if self.skipped:
            return f"cache pruning skipped: {self.skipped}"
        kept = ", ".join(sorted(self.kept, key=int))
        return (
            f"cache pruning kept versions {kept}; removed {len(self.bundles)} cached "
            f"bundle(s) {list(self.bundles)} and {len(self.graphs)} ONNX graph(s)"
        )


def prune_caches(
    settings: Settings, client: MlflowClient, con: duckdb.DuckDBPyConnection
) -> Pruned:
    """Prune both caches down to champion + previous champion + newest
    `settings.cache_keep_newest` versions. `con` reads metrics.promotions.

    Without a champion or a readable registry nothing is pruned: `registry.champion` and
    `registry.all_versions` answer None / [] when MLflow fails, and "keep nothing" must never
    follow from an outage.
    """
    current = registry.champion(client)
    if current is None:
        return Pruned(skipped="no champion in the registry (or the registry is unreachable)")
    versions = [info.version for info in registry.all_versions(client)]
    if current.version not in versions:
        return Pruned(skipped="the registry's version list does not include the champion")
    keep = versions_to_keep(
        versions,
        current.version,
        previous_champion(con, current.version),
        settings.cache_keep_newest,
    )
    bundles = prune_registry_cache(settings.registry_cache_dir, keep)
    graphs = prune_onnx_cache(settings.onnx_cache_dir, settings.registry_cache_dir, keep)
    return Pruned(tuple(keep), tuple(bundles), tuple(graphs))


def prune_caches_safely(
    settings: Settings,
    client: MlflowClient,
    con: duckdb.DuckDBPyConnection,
    warn: Callable[[str], None],
) -> Pruned | None:
    """`prune_caches`, for callers whose own work is done (the champion moved): pruning is
    housekeeping, so any error is reported through `warn` and never raised."""
    try:
        return prune_caches(settings, client, con)
    except Exception as error:
        warn(f"cache pruning failed, caches left as they are: {error!r}")
        return None
