"""The MLflow model registry as the platform uses it: versions, the `champion` alias, bundles.

A version's source is the run's `model/` artifact folder: our bundle (card.json plus skops
or safetensors weights), not an MLflow flavour, because flavours pickle by default. The local
cache keeps one copy per version: training moves its bundle in once the version exists, and
any other version is downloaded once, the first time something loads it with `Predictor`.

The store is either one this process opens itself (SQLite under SENTIMENT_HOME, artifacts in
its `mlartifacts/`) or an MLflow tracking server over HTTP, which owns its artifact root: then
sources are `mlflow-artifacts:/` URIs and every byte goes through the server, never written
into its folder by a client (which may run on another machine).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.core.months import date_or_none
from sentiment_assets.lib.settings import is_tracking_server

if TYPE_CHECKING:
    from sentiment_assets.lib.models.model_bundle import ModelCard

REGISTERED_MODEL = "tweet-sentiment"
CHAMPION_ALIAS = "champion"
EXPERIMENT_NAME = "tweet-sentiment"
BUNDLE_ARTIFACT_PATH = "model"
TRAINED = "trained"
PRIOR_ADJUSTED = "prior_adjusted"


@dataclass(frozen=True)
class VersionInfo:
    version: str
    family: str
    # The `trained_through` tag's month; None on a version registered without one.
    trained_through: date | None
    run_id: str | None
    source: str
    # TRAINED, or PRIOR_ADJUSTED for a trained version's scores moved to a month's prior
    # (same weights): such a child names its parent and is never a month's fresh challenger.
    kind: str = TRAINED
    parent_version: str | None = None
    # The card's content-derived id (ModelCard.version): same data, parameters and code.
    bundle_version: str = ""

    @classmethod
    def of(cls, model_version: ModelVersion) -> VersionInfo:
        return cls(
            version=str(model_version.version),
            family=model_version.tags.get("family", ""),
            trained_through=_tagged_month(model_version.tags.get("trained_through")),
            run_id=model_version.run_id,
            source=model_version.source,
            kind=model_version.tags.get("kind", TRAINED),
            parent_version=model_version.tags.get("parent_version"),
            bundle_version=model_version.tags.get("bundle_version", ""),
        )


def _tagged_month(text: str | None) -> date | None:
    """The month a tag holds; None without one, or for one edited by hand into something
    else (the version is still listed, as one of unknown month, rather than every listing
    of the registry failing on it)."""
    try:
        return date_or_none(text)
    except ValueError:
        return None


# MLflow 3 records an experiment's kind in this tag (custom_model_development is what its UI's
# kind selector writes for machine learning), and a UI that reads it opens the experiment on
# its training runs instead of the GenAI traces view. MLflow 3.17's UI decides by its own
# GenAI / machine-learning switch instead: a link carrying ML_VIEW (below).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def configure(tracking_uri: str, artifacts_dir: Path) -> str:
    """Point MLflow at the platform's store; returns the experiment id.

    On a local store the experiment's artifact location is set explicitly (`artifacts_dir`)
    so artifacts land under SENTIMENT_HOME instead of wherever the process happens to run. A
    tracking server chooses it itself (`mlflow-artifacts:/`, proxied by the server): a local
    path there would make every client write into a folder of its own machine that the
    server and the other machines never see. An experiment made before the kind tag existed
    gets it here too.
    """
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        location = None
        if not is_tracking_server(tracking_uri):
            artifacts_dir.mkdir(parents=True, exist_ok=True)
            location = artifacts_dir.resolve().as_uri()
        try:
            return client.create_experiment(
                EXPERIMENT_NAME,
                artifact_location=location,
                tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
            )
        except MlflowException:
            # Another process created it between our lookup and create.
            experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return experiment.experiment_id


def register_version(
    client: MlflowClient, run_id: str, artifact_uri: str, tags: dict[str, str]
) -> VersionInfo:
    try:
        client.create_registered_model(
            REGISTERED_MODEL, description="Binary tweet sentiment (0 negative, 1 positive)."
        )
    except MlflowException as error:
        if "already exists" not in str(error).lower() and "RESOURCE_ALREADY_EXISTS" not in str(
            error
        ):
            raise
    version = client.create_model_version(
        REGISTERED_MODEL,
        source=f"{artifact_uri}/{BUNDLE_ARTIFACT_PATH}",
        run_id=run_id,
        tags=tags,
    )
    return VersionInfo.of(version)


def register_bundle(
    client: MlflowClient, run_id: str, artifact_uri: str, bundle: Path, card: ModelCard
) -> VersionInfo:
    """Log a saved bundle as the run's `model/` artifacts and register it as a new version,
    tagged with the card's family, month and bundle version."""
    client.log_artifacts(run_id, str(bundle), artifact_path=BUNDLE_ARTIFACT_PATH)
    tags = {
        "family": card.family,
        "trained_through": card.trained_through.isoformat(),
        "bundle_version": card.version,
    }
    if card.prior_adjustment:
        tags["kind"] = PRIOR_ADJUSTED
        tags["parent_version"] = str(card.prior_adjustment["parent_version"])
    return register_version(client, run_id, artifact_uri, tags)


def version_holding(client: MlflowClient, bundle_version: str) -> VersionInfo | None:
    """The registered version whose bundle has this content-derived id, if any: a retrain
    on unchanged data, parameters and code reuses it instead of registering a twin."""
    return next((v for v in all_versions(client) if v.bundle_version == bundle_version), None)


def all_versions(client: MlflowClient) -> list[VersionInfo]:
    try:
        versions = client.search_model_versions(f"name='{REGISTERED_MODEL}'")
    except MlflowException:
        return []
    return sorted((VersionInfo.of(v) for v in versions), key=lambda v: int(v.version))


def latest_versions_trained_through(client: MlflowClient, month: date) -> list[VersionInfo]:
    """The newest version of each family trained through `month`."""
    newest: dict[str, VersionInfo] = {}
    for info in all_versions(client):
        if info.trained_through == month and info.kind == TRAINED:
            newest[info.family] = info
    return [newest[f] for f in sorted(newest)]


def champion(client: MlflowClient) -> VersionInfo | None:
    try:
        return VersionInfo.of(client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS))
    except MlflowException:
        return None


def version_info(client: MlflowClient, version: str) -> VersionInfo:
    return VersionInfo.of(client.get_model_version(REGISTERED_MODEL, version))


def set_champion(client: MlflowClient, version: str) -> VersionInfo:
    info = version_info(client, version)
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, info.version)
    return info


def cached_bundle_path(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"v{version}"


# Hidden entries of the cache live for one download or one save-and-register (seconds to
# minutes); one this old was left by a process that was killed.
ABANDONED_STAGING_S = 3600


def sweep_abandoned(cache_dir: Path) -> list[str]:
    """Remove hidden staging folders older than ABANDONED_STAGING_S; returns their names."""
    cutoff = time.time() - ABANDONED_STAGING_S
    removed = []
    for entry in cache_dir.glob(".*"):
        try:
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        except FileNotFoundError:
            continue  # another process swept or finished it first
    return removed


@contextmanager
def staging_dir(cache_dir: Path, prefix: str) -> Iterator[Path]:
    """A fresh hidden folder in the cache (same file system, so renames out of it are
    atomic), removed on exit with whatever was not moved out."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    sweep_abandoned(cache_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{prefix}-", dir=cache_dir))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def adopt_bundle(bundle: Path, info: VersionInfo, cache_dir: Path) -> Path:
    """Move a just-registered bundle into the cache as the version's local copy.

    The trainer already holds the files MLflow stored, so the cache takes them instead of
    downloading them again: one local copy per version, not two. A rename, so readers see
    the whole folder or none of it.
    """
    target = cached_bundle_path(cache_dir, info.version)
    card = (bundle / "card.json").read_bytes()
    try:
        os.replace(bundle, target)
        return target
    except OSError:
        existing = target / "card.json"
        if not existing.exists():
            raise
        if existing.read_bytes() == card:
            # Someone fetched this very version first: keep theirs.
            shutil.rmtree(bundle, ignore_errors=True)
            return target
    # A different bundle under the same number: left over from a registry that was reset
    # (numbers start again at 1). The bundle just registered is the truth for this number.
    with staging_dir(cache_dir, f"v{info.version}-retired") as retired:
        os.replace(target, retired / "bundle")
        os.replace(bundle, target)
    return target


def download_bundle(info: VersionInfo, cache_dir: Path, tracking_uri: str | None = None) -> Path:
    """The version's bundle folder, fetched once; concurrent callers never see half a copy.

    `tracking_uri` is the server a `mlflow-artifacts:/` source is fetched from; None: this
    process's tracking URI (`mlflow.set_tracking_uri`, else MLFLOW_TRACKING_URI), which
    Dagster steps have from their environment. A local store's `file:` sources need neither.
    """
    target = cached_bundle_path(cache_dir, info.version)
    if (target / "card.json").exists():
        return target
    with staging_dir(cache_dir, f"v{info.version}") as staging:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=info.source, dst_path=staging, tracking_uri=tracking_uri
            )
        )
        try:
            os.replace(local, target)
        except OSError:
            if not (target / "card.json").exists():
                raise
    return target


# MLflow 3.17's UI opens an experiment in its GenAI view unless the page is asked for the
# machine-learning one; the choice then sticks in the browser. Checked in headless Chromium:
# with this parameter the experiment opens on "Runs", without it on GenAI "Overview".
ML_VIEW = "workflowType=machine_learning"


def run_url(ui_base: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"
