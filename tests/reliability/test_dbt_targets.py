"""Everything a run writes lives in the home, and is reclaimed (issue 24).

dagster-dbt gave every dbt_models step a new ~2 MB folder in the repository's
dbt_project/target/ and never removed it. A step now writes its artifacts and logs under
SENTIMENT_HOME/dbt/ and removes them when it ends; recovery at start reclaims the folders
of steps that could not (killed, or failed on a full disk). The manifest `make manifest`
writes in dbt_project/target/ is what the code location reads, and stays.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import pytest

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.settings import DBT_PROJECT_DIR, Settings
from sentiment_assets.ops.recovery import recover
from tests.conftest import use_home
from tests.reliability.landing_runs import execute

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(1200)]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    use_home(monkeypatch, tmp_path / "home")
    return current_settings()


def repository_target() -> set[Path]:
    return set((DBT_PROJECT_DIR / "target").rglob("*"))


def test_a_dbt_step_leaves_nothing_in_the_repository_or_the_home(
    settings: Settings, record_property
) -> None:
    before = repository_target()
    assert DBT_PROJECT_DIR / "target" / "manifest.json" in before
    with dg.instance_for_test() as instance:
        assert execute(instance, settings, "2024-02-01", {}).success
    assert repository_target() == before, "nothing new in dbt_project/target/"
    assert list(settings.dbt_target_dir.iterdir()) == [], "the step's folder is removed"
    record_property("measured", f"{len(before)} entries in dbt_project/target/, unchanged")


def test_recovery_reclaims_the_target_folders_of_ended_runs(settings: Settings) -> None:
    dead = settings.dbt_target_dir / f"{uuid.uuid4()}-2024-02-01"
    (dead / "logs").mkdir(parents=True)
    (dead / "run_results.json").write_text("{}")
    with dg.instance_for_test() as instance:
        recovery = recover(instance, settings)
    assert recovery.removed_dbt_targets == [dead.name]
    assert not dead.exists()
    assert "1 dbt target folder(s) of ended runs removed" in (recovery.summary() or "")
