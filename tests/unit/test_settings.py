"""One Settings per process: read from the environment in one place, handed down unchanged."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sentiment_assets.defs.platform.resources import PlatformResource
from sentiment_assets.lib.data import synthetic
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
        "SENTIMENT_EARLIEST_MONTH": "2023-06-01",
        "SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS": "2",
        "SENTIMENT_RETRAIN_COOLDOWN_SECONDS": "0",
        "SENTIMENT_LANDING_SETTLE_SECONDS": "2.5",
        "SENTIMENT_LANDING_MAX_ATTEMPTS": "4",
        "SENTIMENT_LANDING_RETRY_SECONDS": "0",
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
            "SENTIMENT_LANDING_SETTLE_SECONDS": "30",
            "SENTIMENT_LANDING_MAX_ATTEMPTS": "5",
            "SENTIMENT_LANDING_RETRY_SECONDS": "10",
            "MLFLOW_UI_URL": "http://ui:5000",
        }
    )
    assert (
        settings.landing_settle_seconds,
        settings.landing_max_attempts,
        settings.landing_retry_seconds,
    ) == (30.0, 5, 10.0)
    assert settings.synthetic.tweets_per_month == 120
    assert settings.synthetic.start_month == date(2023, 11, 1)
    assert settings.first_month(latest=date(2026, 12, 1)) == date(2023, 11, 1)
    assert (settings.retrain_window_months, settings.retrain_cooldown_seconds) == (2, 90.0)
    assert settings.mlflow_ui_url == "http://ui:5000"


def test_defaults_and_an_explicit_month_range(tmp_path: Path) -> None:
    defaults = load_settings({"SENTIMENT_HOME": str(tmp_path)})
    assert defaults.synthetic == synthetic.SyntheticConfig()
    assert defaults.first_month(latest=date(2026, 12, 1)) == synthetic.SyntheticConfig().start_month
    assert defaults.retrain_window_months == 1
    assert defaults.retrain_cooldown_seconds == 6 * 3600
    explicit = load_settings(
        {"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_MONTHS": "2009-04-01..2009-06-01"}
    )
    assert explicit.months == (date(2009, 4, 1), date(2009, 5, 1), date(2009, 6, 1))
    assert explicit.first_month(latest=date(2026, 12, 1)) == date(2009, 4, 1)
    earliest = load_settings(
        {"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_EARLIEST_MONTH": "2009-04-17"}
    )
    assert earliest.first_month(latest=date(2026, 12, 1)) == date(2009, 4, 1)


def test_a_file_source_starts_at_its_first_plausible_month(tmp_path: Path) -> None:
    source = tmp_path / "tweets.csv"
    source.write_text(
        "text,created_at,label\n"
        "a typo from before twitter,1999-05-01 10:00:00,positive\n"
        "first real one,2009-04-06 10:00:00,positive\n"
        "later,2009-06-01 10:00:00,negative\n"
        "from the future,2099-01-01 10:00:00,negative\n"
    )
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_SOURCE": str(source)})
    assert settings.first_month(latest=date(2026, 12, 1)) == date(2009, 4, 1)
    # The last partition is the last month with a plausible row, not the calendar's.
    assert settings.last_month(latest=date(2026, 12, 1)) == date(2009, 6, 1)


def test_the_partitions_end_at_the_last_month_with_data(tmp_path: Path) -> None:
    today = date(2026, 12, 1)
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_SYNTHETIC_MONTHS": "3"})
    assert settings.last_month(latest=today) == date(2024, 3, 1)
    # A landing file's months count, up to the latest plausible month.
    settings.landing_dir.mkdir()
    (settings.landing_dir / "more.csv").write_text(
        "text,created_at,label\nlater,2024-08-02 10:00:00,positive\n"
        "future,2099-01-01 10:00:00,negative\n"
    )
    assert settings.last_month(latest=today) == date(2024, 8, 1)
    explicit = load_settings(
        {"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_MONTHS": "2009-04-01..2009-06-01"}
    )
    assert explicit.last_month(latest=today) == date(2009, 6, 1)
    nothing = load_settings(
        {"SENTIMENT_HOME": str(tmp_path / "empty"), "SENTIMENT_SYNTHETIC_MONTHS": "0"}
    )
    assert nothing.last_month(latest=today) == nothing.first_month(latest=today)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS", "0"),
        ("SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS", "two"),
        ("SENTIMENT_RETRAIN_COOLDOWN_SECONDS", "-5"),
        ("SENTIMENT_LANDING_SETTLE_SECONDS", "-1"),
        ("SENTIMENT_LANDING_MAX_ATTEMPTS", "0"),
        ("SENTIMENT_LANDING_RETRY_SECONDS", "soon"),
    ],
)
def test_a_bad_knob_is_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings({"SENTIMENT_HOME": str(tmp_path), name: value})


def test_a_source_without_usable_dates_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("text,created_at,label\n")
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_SOURCE": str(tmp_path)})
    assert isinstance(settings, Settings)
    with pytest.raises(ValueError, match="holds no row dated between"):
        settings.first_month(latest=date(2026, 12, 1))


def test_one_broken_file_does_not_decide_the_first_month(tmp_path: Path) -> None:
    (tmp_path / "broken.csv").write_bytes(b"\x00\x01 not a csv \xff")
    (tmp_path / "good.csv").write_text("text,created_at,label\nfine,2009-05-02 10:00:00,positive\n")
    settings = load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_SOURCE": str(tmp_path)})
    assert settings.first_month(latest=date(2026, 12, 1)) == date(2009, 5, 1)


def test_an_exported_embedded_environment_switched_to_prod_gets_the_lake(tmp_path):
    """Every process exports its settings for its children; a shell or test that then sets
    SENTIMENT_PROFILE=prod must get the prod profile's warehouse, not the embedded one's
    exported default (two dbt builds then met on one DuckDB file's lock)."""
    embedded = load_settings({"SENTIMENT_HOME": str(tmp_path)}).environment()
    switched = load_settings({**embedded, "SENTIMENT_PROFILE": "prod"})
    assert switched.uses_lake
    assert switched.warehouse_path == tmp_path.resolve() / "lake"
    assert load_settings(embedded).warehouse_path == tmp_path.resolve() / "warehouse.duckdb"
    # A warehouse chosen explicitly still travels to child processes.
    chosen = load_settings({"SENTIMENT_HOME": str(tmp_path), "SENTIMENT_WAREHOUSE": "lake"})
    assert load_settings(chosen.environment()).uses_lake
