"""The platform on an MLflow tracking server over HTTP: a real `mlflow server` process on a
loopback port, its backend store in PostgreSQL (skipped where PostgreSQL is not installed)
or SQLite, artifacts proxied by the server (`--serve-artifacts`).

One month is built through the real Dagster assets with MLFLOW_TRACKING_URI pointing at the
server; then `sentiment rollback` moves the alias over HTTP and an app's model holder on
another home (as on another machine: no shared disk) follows it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import mlflow
import pytest
import sqlalchemy
from mlflow.tracking import MlflowClient

from gradio_app.model_holder import registry_holder
from sentiment_assets.definitions import defs
from sentiment_assets.defs.platform.jobs import MONTH_BUILD, RETRAIN_SELECTION
from sentiment_assets.lib.hosting import lifecycle, services
from sentiment_assets.lib.settings import Settings, load_settings
from sentiment_assets.lib.store.warehouse import connect
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.retrain_policy import fast_families
from sentiment_assets.ops.instance import prepare_environment
from tests.conftest import use_home

pytestmark = pytest.mark.prod

MONTH = "2024-01-01"
MLFLOW_ARTIFACTS_PREFIX = "mlflow-artifacts:/"


@dataclass(frozen=True)
class MlflowServer:
    url: str
    # The --backend-store-uri: runs and the registry.
    store: str
    # The server's --artifacts-destination: the only place artifacts may be written.
    artifacts: Path


@dataclass(frozen=True)
class Built:
    server: MlflowServer
    settings: Settings
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def server(request: pytest.FixtureRequest) -> Iterator[MlflowServer]:
    """`mlflow server` (and PostgreSQL for its backend store) under a folder of their own.

    Not under pytest's tmp folder: that one is private to its owner, and PostgreSQL, which
    refuses to run as root, runs as another user that must be able to enter it.
    """
    backend = request.param
    if backend == "postgresql" and services.postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed (make setup-prod installs it)")
    folder = Path(tempfile.mkdtemp(prefix="sentiment-mlflow-server-"))
    folder.chmod(0o755)
    try:
        if backend == "postgresql":
            _, postgres = services.start_postgres(
                folder, services.free_port(), services.secret(folder)
            )
            store = postgres.url(services.MLFLOW_DB)
        else:
            store = f"sqlite:///{folder / 'mlflow.db'}"
        began = time.monotonic()
        started = services.start_mlflow(folder, services.free_port(), store, os.environ)
        print(f"mlflow server ({backend} store) answered after {time.monotonic() - began:.1f} s")
        yield MlflowServer(started.url, store, folder / "mlflow" / "artifacts")
    finally:
        lifecycle.stop_all(folder)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def built(server: MlflowServer, tmp_path_factory, onnx_cache: Path) -> Iterator[Built]:
    """One month built in this process against the server, and trained in the same run as
    its first decision would train it (the fast families only: two registered versions, one
    of them made champion)."""
    previous_uri = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_home(monkeypatch, tmp_path_factory.mktemp("home"))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
        settings = prepare_environment()
        definitions = defs()
        result = dg.materialize(
            list(definitions.assets or []),
            partition_key=MONTH,
            instance=dg.DagsterInstance.get(),
            resources=definitions.resources,
            selection=MONTH_BUILD | RETRAIN_SELECTION,
            run_config={"ops": {"sentiment_model": {"config": {"families": fast_families()}}}},
        )
        try:
            yield Built(server, settings, result)
        finally:
            # The mlflow resource set the process-wide URI: later tests must not log here.
            mlflow.set_tracking_uri(previous_uri)


def file_digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_registry_is_in_the_servers_backend_store(built: Built) -> None:
    client = MlflowClient(built.settings.mlflow_tracking_uri)
    engine = sqlalchemy.create_engine(built.server.store)
    try:
        with engine.connect() as con:
            stored = con.execute(
                sqlalchemy.text("SELECT version FROM model_versions WHERE name = :name"),
                {"name": registry.REGISTERED_MODEL},
            ).fetchall()
    finally:
        engine.dispose()
    assert sorted(str(v) for (v,) in stored) == [v.version for v in registry.all_versions(client)]
    assert len(stored) == len(fast_families())


def test_versions_and_their_artifacts_live_on_the_server(built: Built, tmp_path: Path) -> None:
    settings, server = built.settings, built.server
    assert built.result.success
    client = MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(registry.EXPERIMENT_NAME)
    # Chosen by the server, not forced to a folder of the client's machine.
    assert experiment.artifact_location.startswith(MLFLOW_ARTIFACTS_PREFIX)
    versions = registry.all_versions(client)
    assert sorted(v.family for v in versions) == sorted(fast_families())
    for info in versions:
        assert info.source.startswith(MLFLOW_ARTIFACTS_PREFIX), info
        stored = server.artifacts / info.source.removeprefix(MLFLOW_ARTIFACTS_PREFIX)
        assert (stored / "card.json").exists(), info
        # The trainer's own copy, moved into this home's cache, is what the server holds.
        cached = registry.cached_bundle_path(settings.registry_cache_dir, info.version)
        assert file_digests(cached) == file_digests(stored), info
        # A step that finds no cached copy fetches it from the process's tracking URI (the
        # server, as MLFLOW_TRACKING_URI says in every process the platform starts).
        fetched = registry.download_bundle(info, tmp_path / f"fresh-{info.version}")
        assert file_digests(fetched) == file_digests(stored), info
    # The cache of the server's versions is not the embedded store's cache.
    assert settings.registry_cache_dir.parent == settings.home / "registry_cache"
    # The client wrote no artifact store of its own.
    assert not settings.mlflow_artifacts_dir.exists()
    assert not (settings.home / "mlflow.db").exists()
    with connect(settings.warehouse, read_only=True) as con:
        uris = dict(
            con.execute("SELECT model_version, model_uri FROM metrics.training_runs").fetchall()
        )
    assert uris == {v.version: v.source for v in versions}


def test_dagster_links_open_the_servers_ui(built: Built) -> None:
    (event,) = [
        e
        for e in built.result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "sentiment_model"
    ]
    link = event.materialization.metadata["mlflow_parent_run"].value
    assert link.startswith(f"{built.server.url}/#/experiments/"), link


def sentiment(*args: str) -> subprocess.CompletedProcess[str]:
    """The `sentiment` console script in a process of its own, configured by the
    environment only (as `use_home` and the fixture set it)."""
    script = Path(sys.executable).with_name("sentiment")
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def test_rollback_over_http_and_the_app_follows(built: Built, tmp_path: Path) -> None:
    settings = built.settings
    client = MlflowClient(settings.mlflow_tracking_uri)
    champion = registry.champion(client)
    assert champion is not None
    (other,) = [v for v in registry.all_versions(client) if v.version != champion.version]

    # The app on a home of its own: it shares nothing with the pipeline but the server.
    app_settings = load_settings(
        {
            "SENTIMENT_HOME": str(tmp_path / "app-home"),
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "SENTIMENT_DEVICE": "cpu",
            "SENTIMENT_ONNX_CACHE": os.environ["SENTIMENT_ONNX_CACHE"],
        }
    )
    holder = registry_holder(app_settings, reload_seconds=3600)

    def served() -> str:
        assert holder.refresh(), holder.status().failure
        return holder.current().info.version

    # The holder downloads from its settings' server, not from wherever this process last
    # pointed MLflow (set_tracking_uri also sets MLFLOW_TRACKING_URI for child processes,
    # hence put back before the CLI runs).
    pipeline_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    try:
        assert served() == champion.version
    finally:
        mlflow.set_tracking_uri(pipeline_uri)
    fetched = registry.cached_bundle_path(app_settings.registry_cache_dir, champion.version)
    assert (fetched / "card.json").exists()

    moved = sentiment("rollback", "--to", other.version)
    assert moved.returncode == 0, moved.stderr
    assert registry.champion(client).version == other.version
    assert served() == other.version

    back = sentiment("rollback")  # to the previous champion
    assert back.returncode == 0, back.stderr
    assert registry.champion(client).version == champion.version
    assert served() == champion.version
    assert holder.predict(["what a lovely day"]).version == champion.version

    with connect(settings.warehouse, read_only=True) as con:
        rollbacks = con.execute(
            "SELECT model_version FROM metrics.promotions WHERE decision = 'rollback' "
            "ORDER BY created_at"
        ).fetchall()
    assert rollbacks == [(other.version,), (champion.version,)]
