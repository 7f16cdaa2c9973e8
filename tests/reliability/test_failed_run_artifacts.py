"""Artifacts of MLflow runs that failed (a full disk, a killed step) are reclaimed by the
recovery at every start, and nothing a registry version or a finished run needs is touched:
on a real SQLite MLflow store with its artifacts under the home."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from mlflow.tracking import MlflowClient

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.versions import registry
from sentiment_assets.ops.recovery import recover
from tests.conftest import use_home

pytestmark = [pytest.mark.reliability]

PAYLOAD_BYTES = 1_000_000


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_home(monkeypatch, tmp_path / "home")
    return current_settings()


def run_with_artifacts(client: MlflowClient, experiment_id: str, tmp_path: Path) -> str:
    """A run that logged a bundle-sized `model/` folder; returns its id."""
    run_id = client.create_run(experiment_id).info.run_id
    bundle = tmp_path / run_id
    bundle.mkdir()
    (bundle / "weights.bin").write_bytes(b"\0" * PAYLOAD_BYTES)
    client.log_artifacts(run_id, str(bundle), artifact_path=registry.BUNDLE_ARTIFACT_PATH)
    return run_id


def artifacts_of(client: MlflowClient, run_id: str) -> Path:
    return Path(client.get_run(run_id).info.artifact_uri.removeprefix("file://"))


def test_recovery_reclaims_the_artifacts_of_failed_runs_no_version_names(
    settings: Settings, tmp_path: Path, record_property
) -> None:
    experiment_id = registry.configure(settings.mlflow_tracking_uri, settings.mlflow_artifacts_dir)
    client = MlflowClient(settings.mlflow_tracking_uri)
    runs = {
        name: run_with_artifacts(client, experiment_id, tmp_path)
        for name in ("failed", "killed", "finished", "failed_but_registered")
    }
    for name, status in (
        ("failed", "FAILED"),
        ("killed", "KILLED"),
        ("finished", "FINISHED"),
        ("failed_but_registered", "FAILED"),
    ):
        client.set_terminated(runs[name], status=status)
    registered = runs["failed_but_registered"]
    registry.register_version(
        client, registered, client.get_run(registered).info.artifact_uri, tags={}
    )
    folders = {name: artifacts_of(client, run_id) for name, run_id in runs.items()}
    assert all(folder.is_dir() for folder in folders.values())

    with dg.instance_for_test() as instance:
        recovery = recover(instance, settings)
        again = recover(instance, settings)

    assert sorted(recovery.reclaimed_artifacts_of) == sorted([runs["failed"], runs["killed"]])
    assert not folders["failed"].parent.exists() and not folders["killed"].parent.exists()
    assert folders["finished"].is_dir(), "a finished run keeps its artifacts"
    assert folders["failed_but_registered"].is_dir(), "a version's artifacts are never removed"
    assert recovery.reclaimed_bytes >= 2 * PAYLOAD_BYTES
    assert "artifacts of 2 failed or killed MLflow run(s) removed" in (recovery.summary() or "")
    assert again.reclaimed_artifacts_of == [], "the next start finds nothing left"
    record_property("measured", f"{recovery.reclaimed_bytes / 1e6:.1f} MB reclaimed")
