"""Adding a drift statistic is one decorated function: a toy one reaches the registry, the
thresholds, DriftConfig (and the Launchpad's schema) and the report's rows with no other edit."""

from collections.abc import Iterator
from datetime import date

import numpy as np
import pytest

from sentiment_assets.defs.monitoring.assets import drift_config_class
from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.stats.drift import (
    DriftSample,
    DriftThresholds,
    Measurement,
    Threshold,
    statistic,
)

TOY = "toy_mean_score_gap"
BUILT_IN = drift.report_names()


def register_toy() -> None:
    @statistic(
        TOY,
        "prediction",
        severity="warn",
        reads=("scores",),
        thresholds={
            "toy_max_gap": Threshold(
                0.1,
                "Largest tolerated gap between the mean scores.",
                lambda g, _: g > 0,
                "must be > 0",
            )
        },
    )
    def mean_score_gap(reference, current, thresholds: DriftThresholds) -> Measurement:
        gap = abs(float(np.nanmean(current) - np.nanmean(reference)))
        return Measurement(gap, thresholds.toy_max_gap, gap > thresholds.toy_max_gap, None, {})


@pytest.fixture
def toy() -> Iterator[str]:
    register_toy()
    yield TOY
    drift.unregister(TOY)


def side(seed: int, low: float) -> DriftSample:
    """300 tweets whose scores are uniform on [low, low + 0.4]."""
    rng = np.random.default_rng(seed)
    texts = [f"tweet number {i}" for i in range(300)]
    return DriftSample(rng.normal(size=(300, 8)), rng.uniform(low, low + 0.4, 300), texts)


def test_the_toy_is_registered_after_the_built_in_statistics(toy: str) -> None:
    assert drift.statistic_named(toy).kind == "prediction"
    assert drift.report_names() == (*BUILT_IN[:-1], toy, drift.COMBINED)


def test_its_threshold_has_a_default_and_a_rule(toy: str) -> None:
    assert DriftThresholds().toy_max_gap == 0.1
    assert DriftThresholds(toy_max_gap=0.3).toy_max_gap == 0.3
    with pytest.raises(ValueError, match="toy_max_gap must be > 0, got 0"):
        DriftThresholds(toy_max_gap=0)


def test_drift_config_and_the_launchpad_schema_carry_its_threshold(toy: str) -> None:
    config_class = drift_config_class()
    assert config_class().thresholds() == DriftThresholds()
    assert config_class(toy_max_gap=0.25).thresholds().toy_max_gap == 0.25
    field = config_class.to_config_schema().as_field().config_type.fields["toy_max_gap"]
    assert (field.default_value, field.description) == (
        0.1,
        "Largest tolerated gap between the mean scores.",
    )


def test_the_report_and_its_rows_hold_the_toy(toy: str) -> None:
    reference, current = side(1, 0.2), side(2, 0.5)
    results = drift.drift_report(reference, current)
    result = results[-2]
    gap = abs(current.scores.mean() - reference.scores.mean())
    assert (result.statistic, result.severity, result.drifted) == (toy, "warn", True)
    assert result.value == pytest.approx(gap)
    assert toy in results[-1].detail["warnings"]
    rows = drift.report_rows(results, date(2024, 5, 1), "reference", "3", "run")
    row = rows.set_index("statistic").loc[toy]
    assert (row["kind"], row["threshold"], row["drifted"]) == ("prediction", 0.1, True)
    undrifted = drift.drift_report(reference, current, DriftThresholds(toy_max_gap=0.5))
    assert undrifted[-2].drifted is False


def test_unregistering_leaves_the_built_in_report() -> None:
    register_toy()
    drift.unregister(TOY)
    assert drift.report_names() == BUILT_IN
    assert "toy_max_gap" not in drift_config_class().model_fields
    with pytest.raises(ValueError, match="unknown drift threshold toy_max_gap"):
        DriftThresholds(toy_max_gap=0.3)


def test_a_declaration_that_would_clash_is_refused(toy: str) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_toy()
    with pytest.raises(ValueError, match="threshold 'alpha' is already declared"):
        statistic(
            "other",
            "prediction",
            severity="warn",
            reads=("scores",),
            thresholds={"alpha": Threshold(0.05, "another alpha")},
        )
    with pytest.raises(ValueError, match="reads must name fields"):
        statistic("other", "prediction", severity="warn", reads=("score",))
