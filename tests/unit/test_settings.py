"""One Settings per process: read from the environment in one place, handed down unchanged."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.lib import synthetic
from sentiment_assets.lib.settings import Settings, load_settings

FOLDERS = [
    name
    for name, value in vars(Settings).items()
    if isinstance(value, property) and name.endswith(("_dir", "_home"))
]


def test_every_folder_lies_in_the_home_and_no_two_share(tmp_path: Path) -> None:
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path)})
    assert len(FOLDERS) >= 7
    for name in FOLDERS:
        assert getattr(settings, name).parent == tmp_path.resolve(), name
    assert len({getattr(settings, name) for name in FOLDERS}) == len(FOLDERS)


def test_the_exported_environment_rebuilds_the_same_settings(tmp_path: Path) -> None:
    env = {
        "SENTIMENT_HOME": str(tmp_path),
        "SENTIMENT_SOURCE": "synthetic",
        "SENTIMENT_SYNTHETIC_MONTHS": "4",
        "SENTIMENT_SYNTHETIC_DRIFT_MONTH": "2",
        "SENTIMENT_MONTHS": "2024-01-01..2024-03-01",
        "SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS": "2",
        "SENTIMENT_RETRAIN_COOLDOWN_SECONDS": "0",
        "MLFLOW_UI_URL": "http://mlflow.internal:5000",
        "UNRELATED": "not carried",
    }
    settings = load_settings(env)
    exported = settings.environment()
    assert "UNRELATED" not in exported
    assert exported["DUCKDB_PATH"] == str(tmp_path.resolve() / "warehouse.duckdb")
    assert load_settings(exported) == settings
    # ...and so does the Dagster resource that hands them to assets and sensors.
    assert PlatformResource.of(settings).settings == settings


def test_the_knobs_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "SENTIMENT_HOME": str(tmp_path),
            "SENTIMENT_SYNTHETIC_START": "2023-11-01",
            "SENTIMENT_SYNTHETIC_MONTHS": "3",
            "SENTIMENT_SYNTHETIC_TWEETS_PER_MONTH": "120",
            "SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS": "2",
            "SENTIMENT_RETRAIN_COOLDOWN_SECONDS": "90",
            "MLFLOW_UI_URL": "http://ui:5000",
        }
    )
    assert settings.synthetic.tweets_per_month == 120
    assert settings.partition_months() == [date(2023, 11, 1), date(2023, 12, 1), date(2024, 1, 1)]
    assert (settings.retrain_window_months, settings.retrain_cooldown_seconds) == (2, 90.0)
    assert settings.mlflow_ui_url == "http://ui:5000"


def test_defaults_and_an_explicit_month_range(tmp_path: Path) -> None:
    defaults = load_settings({"SENTIMENT_HOME": str(tmp_path)})
    assert defaults.synthetic == synthetic.SyntheticConfig()
    assert defaults.partition_months() == synthetic.months(synthetic.SyntheticConfig())
    assert defaults.retrain_window_months == 1
    assert defaults.retrain_cooldown_seconds == 6 * 3600
    explicit = load_settings(
        {"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_MONTHS": "2009-04-01..2009-06-01"}
    )
    assert explicit.partition_months() == [date(2009, 4, 1), date(2009, 5, 1), date(2009, 6, 1)]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS", "0"),
        ("SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS", "two"),
        ("SENTIMENT_RETRAIN_COOLDOWN_SECONDS", "-5"),
    ],
)
def test_a_bad_knob_is_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings({"SENTIMENT_HOME": str(tmp_path), name: value})


def test_a_source_without_dates_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("text,created_at,label\n")
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_SOURCE": str(empty)})
    assert isinstance(settings, Settings)
    with pytest.raises(ValueError, match="no row with a usable date"):
        settings.partition_months()
