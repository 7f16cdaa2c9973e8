"""The code location's shape: names, configs and mappings each come from one place."""

from __future__ import annotations

from datetime import date

import dagster as dg

from sentiment_assets import lineage
from sentiment_assets.definitions import defs
from sentiment_assets.defs.models.promotion import PromotionConfig
from sentiment_assets.defs.models.training import TRAINING_WINDOW_MAPPING, TrainConfig
from sentiment_assets.defs.monitoring.assets import DriftConfig
from sentiment_assets.lib.models.families import family
from sentiment_assets.lib.models.model_bundle import ModelCard
from sentiment_assets.lib.models.params import FinetuneParams, LogRegParams
from sentiment_assets.lib.models.training import (
    DEFAULT_WINDOW_MONTHS,
    FINETUNED_TRANSFORMER,
    TFIDF_LOGREG,
)
from sentiment_assets.lib.stats.drift import DriftThresholds, threshold_specs


def test_every_lineage_name_is_an_asset_and_every_asset_has_a_name() -> None:
    keys = {k.to_user_string() for k in defs().resolve_asset_graph().get_all_asset_keys()}
    names = {v for k, v in vars(lineage).items() if k.isupper()}
    assert names == keys


def test_train_config_defaults_are_the_library_defaults() -> None:
    config = TrainConfig()
    knobs = config.knobs(device=None)
    assert family(FINETUNED_TRANSFORMER).params(knobs) == FinetuneParams(seed=config.seed)
    assert family(TFIDF_LOGREG).params(knobs) == LogRegParams(seed=config.seed)
    assert config.window_months == DEFAULT_WINDOW_MONTHS


def test_drift_config_defaults_are_the_library_thresholds() -> None:
    assert DriftConfig().thresholds() == DriftThresholds()
    changed = DriftConfig(alpha=0.05, top_keywords=3).thresholds()
    assert (changed.alpha, changed.top_keywords) == (0.05, 3)
    assert set(threshold_specs()) <= set(DriftConfig.model_fields)


def test_the_window_lives_in_training_alone() -> None:
    # The promotion gate reads the challenger's window from its card, not from config.
    assert "window_months" not in PromotionConfig.model_fields
    months = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-07-01")
    upstream = TRAINING_WINDOW_MAPPING.get_upstream_mapped_partitions_result_for_partitions(
        months.subset_with_partition_keys(["2024-05-01"]), months, months
    ).partitions_subset.get_partition_keys()
    assert len(list(upstream)) == DEFAULT_WINDOW_MONTHS


def test_a_card_knows_its_window() -> None:
    card = ModelCard(
        family="tfidf_logreg",
        trained_through=date(2024, 3, 1),
        window_start=date(2023, 12, 1),
        params={},
        data_fingerprint="x",
    )
    assert [m.isoformat() for m in card.window()] == [
        "2023-12-01",
        "2024-01-01",
        "2024-02-01",
        "2024-03-01",
    ]


def test_a_month_launched_from_the_ui_runs_its_steps_in_one_process() -> None:
    # A process per step imported the whole stack once per step (bench/bench_ui_launch.py):
    # the embedded profile's jobs, the month build included, run in the run's process.
    definitions = defs()
    for name in ("month_build_job", "month_data_job"):
        assert definitions.resolve_job_def(name).executor_def == dg.in_process_executor


def test_every_asset_check_explains_itself() -> None:
    graph = defs().resolve_asset_graph()
    checks = [graph.get_check_spec(key) for key in graph.asset_check_keys]
    assert len(checks) >= 10
    undescribed = [spec.key.to_user_string() for spec in checks if not (spec.description or "")]
    assert undescribed == []
