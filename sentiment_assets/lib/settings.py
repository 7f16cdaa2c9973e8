"""Where the platform keeps its state and how it behaves, resolved once from the environment.

Every process (Dagster, dbt, the CLI, the app) derives its paths from the same variables so
that they all agree on one absolute DuckDB file: two relative paths resolved from different
working directories would silently give two warehouses. This module only interprets a
mapping; reading the process environment is the job of `sentiment_assets.environment`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from sentiment_assets.lib.core.months import month_start, parse_month_range
from sentiment_assets.lib.core.ports import DEFAULT_PORTS
from sentiment_assets.lib.data import synthetic
from sentiment_assets.lib.data.landing import landing_files
from sentiment_assets.lib.data.sources import (
    SYNTHETIC_SOURCE,
    SourceFileError,
    file_months_remembered,
    source_files,
)
from sentiment_assets.lib.encoding.encoder_precision import check_precision
from sentiment_assets.lib.store.lake import Lake

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DEFAULT_HOME = REPO_ROOT / ".sentiment"
DEFAULT_ENCODER = "all-MiniLM-L6-v2"
DEFAULT_MLFLOW_UI_URL = f"http://127.0.0.1:{DEFAULT_PORTS.mlflow}"
# MLFLOW_TRACKING_URI schemes of a tracking server, as opposed to a store (SQLite, a database,
# a folder) the process opens itself: the server owns the artifact root and serves its own UI.
TRACKING_SERVER_SCHEMES = ("http", "https", "databricks")
# A drift retrain learns from the drifted month alone: the months before it describe a world
# that has just changed.
DEFAULT_RETRAIN_WINDOW_MONTHS = 1
# A month retrained less than this long ago is not retrained again on a new drift report.
DEFAULT_RETRAIN_COOLDOWN_SECONDS = 6 * 3600.0
# SENTIMENT_RETRAIN_POLICY: when a month's champion is retrained (lib/versions/
# training_decision.py). "on_drift" trains on content drift, an accuracy drop or an old
# champion; "always" trains every month (the behaviour before the policy existed); "never"
# keeps the first model, the control the policy is measured against.
RETRAIN_ALWAYS = "always"
RETRAIN_ON_DRIFT = "on_drift"
RETRAIN_NEVER = "never"
RETRAIN_POLICIES = (RETRAIN_ALWAYS, RETRAIN_ON_DRIFT, RETRAIN_NEVER)
# A drop of the champion's accuracy (realised, or estimated without labels) below its own
# holdout accuracy by more than this retrains under on_drift: in bench/results/policy.md the
# synthetic quiet months stay within 0.035 of the reference, the first drift month falls 0.148.
DEFAULT_RETRAIN_ACCURACY_DROP = 0.05
# A champion trained this many months before the month being decided is retrained whatever
# the drift statistics say: slow change no single month's test sees adds up.
DEFAULT_MAX_CHAMPION_AGE_MONTHS = 6
# Fewer labelled rows than this in a month train nothing: a model fit on a handful of
# tweets would only lose the promotion gate.
DEFAULT_MIN_LABELLED_ROWS = 200
# CPU seconds the fine-tuned family may spend training when no GPU is present.
DEFAULT_FINETUNE_CPU_BUDGET_SECONDS = 15 * 60.0
# The local model caches keep the champion, the previous champion and this many newest
# versions (at least 1: the newest is the one just trained or being promoted).
DEFAULT_CACHE_KEEP_NEWEST = 6
# A landing file is read once its size and modification time have not changed for this long
# (a writer still appending to it would otherwise be ingested half-written).
DEFAULT_LANDING_SETTLE_SECONDS = 5.0
# new_data_sensor's runs of one landing file: this many attempts, the n-th retry waiting
# SENTIMENT_LANDING_RETRY_SECONDS * 2**(n-1) after the failure, then the file is quarantined.
DEFAULT_LANDING_MAX_ATTEMPTS = 3
DEFAULT_LANDING_RETRY_SECONDS = 60.0
# A run requested for a landing file that is still not in the instance after this long was
# lost (the request dropped, the run deleted, the daemon dead before submitting it): the
# attempt counts as failed. Submission takes seconds; a queued run is already in the instance.
DEFAULT_LANDING_REQUEST_TIMEOUT_SECONDS = 600.0
# `sentiment pipeline` backs the stores up before it builds, keeping this many such backups
# (SENTIMENT_BACKUPS_KEEP; 0 turns them off). Each is a full copy of the warehouse.
DEFAULT_BACKUPS_KEEP = 2
# Twitter opened in March 2006: a tweet dated before it is a typo, never a month of its own.
FIRST_PLAUSIBLE_MONTH = date(2006, 3, 1)

# The app appends corrections here (under Settings.feedback_dir); `user_feedback` reads them.
FEEDBACK_FILE = "feedback.jsonl"

# Variables passed on to child processes as they were given (paths are exported resolved).
PASSED_ON = (
    "SENTIMENT_CELERY_BROKER",
    "SENTIMENT_ENCODER",
    "SENTIMENT_DEVICE",
    "SENTIMENT_ENCODER_PRECISION",
    "SENTIMENT_MONTHS",
    "SENTIMENT_EARLIEST_MONTH",
    "SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS",
    "SENTIMENT_RETRAIN_COOLDOWN_SECONDS",
    "SENTIMENT_CACHE_KEEP_VERSIONS",
    "SENTIMENT_LANDING_SETTLE_SECONDS",
    "SENTIMENT_LANDING_MAX_ATTEMPTS",
    "SENTIMENT_LANDING_RETRY_SECONDS",
    "SENTIMENT_LANDING_REQUEST_TIMEOUT_SECONDS",
    "SENTIMENT_RETRAIN_POLICY",
    "SENTIMENT_RETRAIN_ACCURACY_DROP",
    "SENTIMENT_MAX_CHAMPION_AGE_MONTHS",
    "SENTIMENT_MIN_LABELLED_ROWS",
    "SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS",
    "SENTIMENT_BACKUPS_KEEP",
    "MLFLOW_UI_URL",
)
SYNTHETIC_PREFIX = "SENTIMENT_SYNTHETIC_"

# SENTIMENT_PROFILE: "embedded" (one machine, DuckDB file, SQLite stores: the default) or
# "prod" (the lake warehouse, Dagster on PostgreSQL, steps on Celery workers, an MLflow
# server over HTTP: see deploy/ and the README's "Scaling out").
EMBEDDED = "embedded"
PROD = "prod"
PROFILES = (EMBEDDED, PROD)
# SENTIMENT_WAREHOUSE: "duckdb" (one file, one writer) or "lake" (Parquet files per table and
# month, any number of writers: lib/store/lake.py). Each profile has its default.
DUCKDB_WAREHOUSE = "duckdb"
LAKE_WAREHOUSE = "lake"
WAREHOUSE_KINDS = (DUCKDB_WAREHOUSE, LAKE_WAREHOUSE)


@dataclass(frozen=True)
class Settings:
    home: Path
    duckdb_path: Path
    source: str
    mlflow_tracking_uri: str
    profile: str = EMBEDDED
    warehouse_kind: str = DUCKDB_WAREHOUSE
    # SENTIMENT_LAKE_DIR: the lake warehouse's root (default: the home's lake/).
    lake_dir: Path | None = None
    # SENTIMENT_CELERY_BROKER: the prod profile's Celery broker (and result backend).
    celery_broker: str | None = None
    encoder: str = DEFAULT_ENCODER
    device: str | None = None
    # SENTIMENT_ENCODER_PRECISION: auto | fp32 | fp16 | int8 (see lib/encoder_precision).
    encoder_precision: str = "auto"
    # SENTIMENT_ONNX_CACHE: a folder for the exported encoder graphs other than the home's,
    # e.g. one shared by many homes (the test suite exports and gates once per session).
    onnx_cache: Path | None = None
    # SENTIMENT_MONTHS: an explicit, fixed partition range; None lets the months grow.
    months: tuple[date, ...] | None = None
    # SENTIMENT_EARLIEST_MONTH: where growing partitions start; None: the source's first month.
    earliest_month: date | None = None
    synthetic: synthetic.SyntheticConfig = field(default_factory=synthetic.SyntheticConfig)
    retrain_window_months: int = DEFAULT_RETRAIN_WINDOW_MONTHS
    retrain_cooldown_seconds: float = DEFAULT_RETRAIN_COOLDOWN_SECONDS
    retrain_policy: str = RETRAIN_ON_DRIFT
    retrain_accuracy_drop: float = DEFAULT_RETRAIN_ACCURACY_DROP
    max_champion_age_months: int = DEFAULT_MAX_CHAMPION_AGE_MONTHS
    min_labelled_rows: int = DEFAULT_MIN_LABELLED_ROWS
    finetune_cpu_budget_seconds: float = DEFAULT_FINETUNE_CPU_BUDGET_SECONDS
    # SENTIMENT_CACHE_KEEP_VERSIONS: see lib/versions/cache_pruning.py.
    cache_keep_newest: int = DEFAULT_CACHE_KEEP_NEWEST
    # SENTIMENT_LANDING_SETTLE_SECONDS, _MAX_ATTEMPTS, _RETRY_SECONDS, _REQUEST_TIMEOUT_SECONDS:
    # see the defaults above.
    landing_settle_seconds: float = DEFAULT_LANDING_SETTLE_SECONDS
    landing_max_attempts: int = DEFAULT_LANDING_MAX_ATTEMPTS
    landing_retry_seconds: float = DEFAULT_LANDING_RETRY_SECONDS
    landing_request_timeout_seconds: float = DEFAULT_LANDING_REQUEST_TIMEOUT_SECONDS
    backups_keep: int = DEFAULT_BACKUPS_KEEP
    # Where people open MLflow: the links in Dagster's metadata point here.
    mlflow_ui_url: str = DEFAULT_MLFLOW_UI_URL
    # The variables these settings were read from, to hand the same ones to child processes.
    variables: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    # Where each kind of state lives under the home folder.
    @property
    def source_months_record(self) -> Path:
        # Which months each source file holds, so a process start need not read the files.
        return self.home / "source_months.json"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster_home"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def dbt_target_dir(self) -> Path:
        # dbt's per-run target folders (artifacts and logs), removed when their step ends.
        return self.home / "dbt"

    @property
    def published_dir(self) -> Path:
        return self.home / "published"

    @property
    def registry_cache_dir(self) -> Path:
        cache = self.home / "registry_cache"
        if not is_tracking_server(self.mlflow_tracking_uri):
            return cache
        # A server numbers its versions from 1 as the home's own store does: its v1 is
        # another model, so its bundles get a folder of their own. The name never looks
        # like `v<N>`, so pruning the embedded cache leaves it alone.
        return cache / server_cache_name(self.mlflow_tracking_uri)

    @property
    def onnx_cache_dir(self) -> Path:
        return self.onnx_cache or self.home / "onnx_cache"

    @property
    def feedback_dir(self) -> Path:
        return self.home / "feedback"

    @property
    def mlflow_artifacts_dir(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def uses_lake(self) -> bool:
        return self.warehouse_kind == LAKE_WAREHOUSE

    @property
    def lake_root(self) -> Path:
        return self.lake_dir or self.home / "lake"

    @property
    def warehouse(self) -> Path | Lake:
        """Where the warehouse is: the DuckDB file, or the lake (`lib.warehouse.connect`
        opens either)."""
        return Lake(self.lake_root) if self.uses_lake else self.duckdb_path

    @property
    def warehouse_path(self) -> Path:
        """The warehouse on disk: the DuckDB file, or the lake's root folder."""
        return self.lake_root if self.uses_lake else self.duckdb_path

    @property
    def is_synthetic(self) -> bool:
        return self.source == SYNTHETIC_SOURCE

    def first_month(self, latest: date) -> date:
        """The first partition: the explicit range's, SENTIMENT_EARLIEST_MONTH, the synthetic
        generator's, or the first plausible month (up to `latest`) found in the source."""
        if self.months is not None:
            return self.months[0]
        if self.earliest_month is not None:
            return self.earliest_month
        if self.is_synthetic:
            return self.synthetic.start_month
        found = self._months_in(source_files(self.source), latest)
        if not found:
            raise ValueError(
                f"SENTIMENT_SOURCE={self.source!r} holds no row dated between "
                f"{FIRST_PLAUSIBLE_MONTH:%Y-%m} and {latest:%Y-%m}: set SENTIMENT_EARLIEST_MONTH "
                "or point SENTIMENT_SOURCE at tweets"
            )
        return min(found)

    def last_month(self, latest: date) -> date:
        """The last partition: the explicit range's end, else the newest month up to `latest`
        that holds a row in the source (the synthetic generator's last configured month) or
        in a landing file; the first month when none does. Months after it are not
        launchable until a file brings them and the definitions load again."""
        if self.months is not None:
            return self.months[-1]
        found = synthetic.months(self.synthetic) if self.is_synthetic else []
        if not self.is_synthetic:
            found += self._months_in(source_files(self.source), latest)
        found += self._months_in(landing_files(self.landing_dir), latest)
        return max(found, default=self.first_month(latest))

    def _months_in(self, paths: Iterable[Path], latest: date) -> list[date]:
        """The plausible months (up to `latest`) the files hold, remembered across processes."""
        found: list[date] = []
        for path in paths:
            try:
                found += file_months_remembered(
                    path, self.source_months_record, earliest=FIRST_PLAUSIBLE_MONTH, latest=latest
                )
            except SourceFileError:
                # One broken file must not take the whole code location down: raw_tweets
                # fails naming it, in every month it is read for.
                continue
        return found

    def environment(self) -> dict[str, str]:
        """The variables child processes (dbt, the webserver, the daemon) need to see: from
        them `load_settings` rebuilds these very settings."""
        return {
            **self.variables,
            "SENTIMENT_HOME": str(self.home),
            "DUCKDB_PATH": str(self.duckdb_path),
            "SENTIMENT_SOURCE": self.source,
            "MLFLOW_TRACKING_URI": self.mlflow_tracking_uri,
            "DAGSTER_HOME": str(self.dagster_home),
            "SENTIMENT_PROFILE": self.profile,
            # Only a warehouse chosen against the profile's default travels: a child that
            # is switched to another profile must get that profile's default, not this one's.
            **(
                {"SENTIMENT_WAREHOUSE": self.warehouse_kind}
                if self.warehouse_kind != default_warehouse(self.profile)
                else {}
            ),
            **({"SENTIMENT_LAKE_DIR": str(self.lake_dir)} if self.lake_dir else {}),
            **({"SENTIMENT_ONNX_CACHE": str(self.onnx_cache)} if self.onnx_cache else {}),
        }


def is_tracking_server(tracking_uri: str) -> bool:
    # A bare "databricks" (the workspace of the CLI's default profile) has no scheme.
    scheme = urlsplit(tracking_uri).scheme or tracking_uri
    return scheme.lower() in TRACKING_SERVER_SCHEMES


def server_cache_name(tracking_uri: str) -> str:
    """A folder name for a tracking server's bundles: readable host and port, plus a digest
    of the whole URI (credentials included, so they never appear in a path)."""
    uri = tracking_uri.rstrip("/")
    parts = urlsplit(uri)
    address = parts.hostname or parts.scheme or uri
    if parts.port:
        address += f"-{parts.port}"
    readable = re.sub(r"[^A-Za-z0-9.]+", "-", address)
    return f"server-{readable}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"


def default_ui_url(tracking_uri: str) -> str:
    """Where people open MLflow when MLFLOW_UI_URL is unset: a tracking server over HTTP
    serves its own UI at its own address; a local store is shown by `sentiment serve`."""
    if urlsplit(tracking_uri).scheme.lower() in ("http", "https"):
        return tracking_uri.rstrip("/")
    return DEFAULT_MLFLOW_UI_URL


def read_number(
    env: Mapping[str, str], name: str, default: float, cast: type = float, *, positive: bool = False
) -> float:
    """Variable `name` as a number (`default` when unset or empty); a value that does not
    parse, is negative, or is zero where `positive` is asked for is an error naming it."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {cast.__name__}") from None
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'positive' if positive else '>= 0'}, got {raw!r}")
    return value


def default_warehouse(profile: str) -> str:
    return LAKE_WAREHOUSE if profile == PROD else DUCKDB_WAREHOUSE


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (env.get(name) or "").strip().lower() or default
    if value not in allowed:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Settings from environment variables (`env`); unset or empty ones keep the defaults."""
    home = Path(env.get("SENTIMENT_HOME") or DEFAULT_HOME).expanduser().resolve()
    duckdb_path = Path(env.get("DUCKDB_PATH") or home / "warehouse.duckdb").expanduser().resolve()
    source = env.get("SENTIMENT_SOURCE") or SYNTHETIC_SOURCE
    if source != SYNTHETIC_SOURCE:
        # A relative path means "relative to where the user typed the command", not to
        # whichever directory a Dagster subprocess happens to start in.
        source = str(Path(source).expanduser().absolute())
    profile = _choice(env, "SENTIMENT_PROFILE", PROFILES, EMBEDDED)
    warehouse_kind = _choice(
        env, "SENTIMENT_WAREHOUSE", WAREHOUSE_KINDS, default_warehouse(profile)
    )
    lake_dir = env.get("SENTIMENT_LAKE_DIR") or None
    onnx_cache = env.get("SENTIMENT_ONNX_CACHE") or None
    months = env.get("SENTIMENT_MONTHS") or None
    earliest = env.get("SENTIMENT_EARLIEST_MONTH") or None
    window = read_number(
        env,
        "SENTIMENT_DRIFT_RETRAIN_WINDOW_MONTHS",
        DEFAULT_RETRAIN_WINDOW_MONTHS,
        int,
        positive=True,
    )
    variables = {
        name: value
        for name, value in env.items()
        if value and (name in PASSED_ON or name.startswith(SYNTHETIC_PREFIX))
    }
    tracking_uri = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
    return Settings(
        home=home,
        duckdb_path=duckdb_path,
        source=source,
        mlflow_tracking_uri=tracking_uri,
        profile=profile,
        warehouse_kind=warehouse_kind,
        lake_dir=Path(lake_dir).expanduser().resolve() if lake_dir else None,
        celery_broker=env.get("SENTIMENT_CELERY_BROKER") or None,
        encoder=env.get("SENTIMENT_ENCODER") or DEFAULT_ENCODER,
        device=env.get("SENTIMENT_DEVICE") or None,
        encoder_precision=check_precision(
            (env.get("SENTIMENT_ENCODER_PRECISION") or "auto").strip().lower()
        ),
        onnx_cache=Path(onnx_cache).expanduser().resolve() if onnx_cache else None,
        months=tuple(parse_month_range(months)) if months else None,
        earliest_month=month_start(date.fromisoformat(earliest)) if earliest else None,
        synthetic=synthetic.config_from_env(env),
        retrain_window_months=window,
        retrain_cooldown_seconds=read_number(
            env, "SENTIMENT_RETRAIN_COOLDOWN_SECONDS", DEFAULT_RETRAIN_COOLDOWN_SECONDS
        ),
        retrain_policy=_choice(env, "SENTIMENT_RETRAIN_POLICY", RETRAIN_POLICIES, RETRAIN_ON_DRIFT),
        retrain_accuracy_drop=read_number(
            env, "SENTIMENT_RETRAIN_ACCURACY_DROP", DEFAULT_RETRAIN_ACCURACY_DROP
        ),
        max_champion_age_months=read_number(
            env,
            "SENTIMENT_MAX_CHAMPION_AGE_MONTHS",
            DEFAULT_MAX_CHAMPION_AGE_MONTHS,
            int,
            positive=True,
        ),
        min_labelled_rows=read_number(
            env, "SENTIMENT_MIN_LABELLED_ROWS", DEFAULT_MIN_LABELLED_ROWS, int
        ),
        finetune_cpu_budget_seconds=read_number(
            env,
            "SENTIMENT_FINETUNE_CPU_BUDGET_SECONDS",
            DEFAULT_FINETUNE_CPU_BUDGET_SECONDS,
            positive=True,
        ),
        cache_keep_newest=read_number(
            env, "SENTIMENT_CACHE_KEEP_VERSIONS", DEFAULT_CACHE_KEEP_NEWEST, int, positive=True
        ),
        landing_settle_seconds=read_number(
            env, "SENTIMENT_LANDING_SETTLE_SECONDS", DEFAULT_LANDING_SETTLE_SECONDS
        ),
        landing_max_attempts=read_number(
            env, "SENTIMENT_LANDING_MAX_ATTEMPTS", DEFAULT_LANDING_MAX_ATTEMPTS, int, positive=True
        ),
        landing_retry_seconds=read_number(
            env, "SENTIMENT_LANDING_RETRY_SECONDS", DEFAULT_LANDING_RETRY_SECONDS
        ),
        landing_request_timeout_seconds=read_number(
            env,
            "SENTIMENT_LANDING_REQUEST_TIMEOUT_SECONDS",
            DEFAULT_LANDING_REQUEST_TIMEOUT_SECONDS,
        ),
        backups_keep=read_number(env, "SENTIMENT_BACKUPS_KEEP", DEFAULT_BACKUPS_KEEP, int),
        mlflow_ui_url=env.get("MLFLOW_UI_URL") or default_ui_url(tracking_uri),
        variables=variables,
    )
