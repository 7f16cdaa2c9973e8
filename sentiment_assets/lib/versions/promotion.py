"""The promotion rule (when a challenger may replace the champion) and the record of every
change of champion: promotion, rejection, rollback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.models.behaviour import SuiteResult
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.publish import (
    HistoryRows,
    publish_champion,
    read_champion_file,
    record_history,
)
from sentiment_assets.lib.versions.registry import VersionInfo

PROMOTED = "promoted"
REJECTED = "rejected"
KEPT = "kept"
ROLLBACK = "rollback"
# The alias moved but the process died before recording it: written at the next start.
RECOVERED = "recovered"
# The decisions that put a new version in place: a rollback's history.
CHAMPION_MADE_BY = (PROMOTED, ROLLBACK, RECOVERED)


@dataclass(frozen=True)
class Decision:
    decision: str
    reason: str

    @property
    def passes(self) -> bool:
        return self.decision != REJECTED


class NoChallenger(LookupError):
    """No version of the month to put forward (the month's models are not trained yet)."""


def pick_challenger(
    client: MlflowClient,
    month: date,
    family: str | None,
    behaviour: Callable[[registry.VersionInfo], SuiteResult],
    min_pass_rate: float,
) -> tuple[registry.VersionInfo, dict[str, float], dict[str, SuiteResult]]:
    """The best version on validation macro-F1 among those that clear the floor.

    When none clears it, the best one outright: the gate then decides whether it may
    replace the champion. Ties go to the older version.
    """
    candidates = registry.latest_versions_trained_through(client, month)
    if family:
        newest = {c.family: c for c in candidates}
        candidates = [newest[family]] if family in newest else []
    if not candidates:
        raise NoChallenger(
            f"no registered model{' of family ' + family if family else ''} trained through "
            f"{month:%Y-%m}: materialize sentiment_model for {month.isoformat()} first"
        )
    validation = {
        c.version: client.get_run(c.run_id).data.metrics.get("val_macro_f1", float("-inf"))
        for c in candidates
    }
    suites = {c.version: behaviour(c) for c in candidates}
    eligible = [c for c in candidates if suites[c.version].passes(min_pass_rate)]
    best = max(eligible or candidates, key=lambda c: (validation[c.version], -int(c.version)))
    return best, validation, suites


# Score differences this small are ties: the reasons print scores to 4 decimals, and a
# retrain on unchanged data scores the same rows identically. A tie never moves the champion,
# so rerunning a month cannot churn the alias.
TIE_TOLERANCE = 5e-5


def decide(
    challenger_version: str,
    challenger_score: float,
    champion_version: str | None,
    champion_score: float | None,
    margin: float,
    behaviour_veto: str | None = None,
) -> Decision:
    """Both scores come from the same evaluation rows; `margin` is how much worse is tolerated.

    A margin of 0 means the challenger must be strictly better (by more than
    TIE_TOLERANCE); whatever the margin, a tie keeps the champion. The first model has
    nothing to beat and becomes champion. `behaviour_veto` (see `behaviour_veto`) rejects a
    challenger whatever its score.
    """
    if margin < 0:
        raise ValueError("margin must be >= 0")
    if champion_version is None or champion_score is None:
        return Decision(PROMOTED, "no champion yet: the first model becomes champion")
    if champion_version == challenger_version:
        return Decision(KEPT, "the challenger already is the champion")
    if behaviour_veto:
        return Decision(REJECTED, behaviour_veto)
    gap = challenger_score - champion_score
    compared = f"challenger {challenger_score:.4f} vs champion {champion_score:.4f}"
    if abs(gap) <= TIE_TOLERANCE:
        return Decision(
            REJECTED,
            f"{compared}: a tie (difference {gap:+.4f}, within {TIE_TOLERANCE}); the champion "
            "stays",
        )
    if gap < -margin:
        return Decision(
            REJECTED,
            f"challenger {challenger_score:.4f} is worse than champion {champion_score:.4f} "
            f"by {-gap:.4f}, more than the margin {margin:.4f}",
        )
    return Decision(PROMOTED, f"{compared} (difference {gap:+.4f}, margin {margin:.4f})")


def behaviour_veto(
    challenger: SuiteResult, champion: SuiteResult | None, min_pass_rate: float
) -> str | None:
    """Why a challenger below the minimum-functionality floor may not replace the champion.

    Only a champion that clears the floor itself is protected: a champion that misreads
    plain tweets too must stay replaceable by a better-scoring model.
    """
    if challenger.passes(min_pass_rate) or champion is None or not champion.passes(min_pass_rate):
        return None
    return (
        f"challenger misreads plain tweets: {challenger.summary()}, below the floor of "
        f"{min_pass_rate:.0%}; the champion gets {champion.correct}/{champion.total} right"
    )


@dataclass(frozen=True)
class PromotionRecord:
    """One decision about the champion: a row of metrics.promotions.

    The challenger writes it once (its scores and the gate's verdict); whoever acts on it
    (the champion step, the rollback command) records it with `record_champion_change`.
    """

    model_version: str
    model_family: str
    trained_through: date | None
    decision: str
    reason: str
    champion_version: str | None = None
    champion_score: float | None = None
    challenger_score: float | None = None
    metric: str | None = None
    margin: float | None = None
    eval_month: date | None = None
    n_eval: int | None = None
    dagster_run_id: str | None = None

    @property
    def moves_champion(self) -> bool:
        return self.decision != REJECTED

    def as_json(self) -> dict:
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> PromotionRecord:
        values = dict(data)
        for name in _DATE_FIELDS:
            if values.get(name):
                values[name] = date.fromisoformat(values[name])
        return cls(**values)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{**asdict(self), "created_at": utc_now()}])


_DATE_FIELDS = ("trained_through", "eval_month")


def record_champion_change(
    record: PromotionRecord,
    client: MlflowClient,
    con: duckdb.DuckDBPyConnection,
    published_dir: Path,
) -> VersionInfo | None:
    """Act on a decision and record it: move the `champion` alias (unless the challenger was
    rejected), append the row to metrics.promotions, and publish both for the app.

    The alias moves first: it is what the app serves, so it is the truth a torn promotion is
    reconciled to (`reconcile_champion`, run at every start). Returns the champion's version
    info when the alias moved.
    """
    info = registry.set_champion(client, record.model_version) if record.moves_champion else None
    record_history(con, published_dir, HistoryRows("metrics.promotions", record.frame()))
    if info is not None:
        publish_champion(published_dir, info, record.decision)
    return info


def previous_champion(con: duckdb.DuckDBPyConnection, current: str | None) -> str | None:
    """The latest version made champion (promoted or rolled back to) other than `current`."""
    history = con.execute(
        "SELECT model_version FROM metrics.promotions WHERE list_contains(?, decision) "
        "ORDER BY created_at",
        [list(CHAMPION_MADE_BY)],
    ).fetchall()
    earlier = [version for (version,) in history if version != current]
    return earlier[-1] if earlier else None


def last_recorded_champion(con: duckdb.DuckDBPyConnection) -> str | None:
    """The version the newest row that made a champion names (None: no such row)."""
    row = con.execute(
        "SELECT model_version FROM metrics.promotions WHERE list_contains(?, decision) "
        "ORDER BY created_at DESC LIMIT 1",
        [list(CHAMPION_MADE_BY)],
    ).fetchone()
    return row[0] if row else None


def reconcile_champion(
    client: MlflowClient, con: duckdb.DuckDBPyConnection, published_dir: Path
) -> list[str]:
    """Make the record agree with the registry's `champion` alias; returns what was repaired.

    A process killed between moving the alias and recording it (record_champion_change)
    leaves the app serving a version that metrics.promotions and champion.json do not name.
    The alias is what serves, so the record follows it: the missing row is written with the
    decision RECOVERED, and champion.json is published again. The caller holds `con` for
    writing, so no promotion can be halfway through meanwhile (DuckDB admits one writer).
    """
    current = registry.champion(client)
    if current is None:
        return []
    repaired = []
    recorded = last_recorded_champion(con)
    if recorded != current.version:
        record = PromotionRecord(
            model_version=current.version,
            model_family=current.family,
            trained_through=current.trained_through,
            decision=RECOVERED,
            reason=f"the alias names version {current.version} but the last record names "
            f"{recorded or 'none'}: the process that moved it died before recording it",
            champion_version=recorded,
        )
        record_history(con, published_dir, HistoryRows("metrics.promotions", record.frame()))
        repaired.append(f"promotion of version {current.version} recorded as {RECOVERED}")
    published = read_champion_file(published_dir)
    if published is None or str(published.get("version")) != current.version:
        decision = RECOVERED if recorded != current.version else PROMOTED
        publish_champion(published_dir, current, decision)
        repaired.append(f"champion.json republished for version {current.version}")
    return repaired


def versions_named(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every version the metric history names (as model, champion or the replaced champion):
    the versions people have seen, which recovery must never delete. `con` is the warehouse
    or the published snapshot (lib/versions/publish.py open_history); a table missing from it is skipped.
    """
    named: set[str] = set()
    for table, columns in VERSION_COLUMNS.items():
        for column in columns:
            try:
                rows = con.execute(
                    f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL"
                ).fetchall()
            except duckdb.CatalogException:
                continue
            named |= {str(version) for (version,) in rows}
    return named


VERSION_COLUMNS = {
    "metrics.promotions": ("model_version", "champion_version"),
    "metrics.training_runs": ("model_version",),
    "metrics.model_evaluations": ("model_version",),
    "metrics.slice_evaluations": ("model_version",),
    "metrics.drift_reports": ("champion_version",),
}
