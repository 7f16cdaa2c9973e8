"""The month's drift report: every registered statistic, the combined verdict, its rows."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from datetime import date

import pandas as pd

from sentiment_assets.lib.core.clock import utc_now
from sentiment_assets.lib.stats.drift.registry import (
    COMBINED,
    DriftSample,
    DriftThresholds,
    StatResult,
    registered,
)
from sentiment_assets.lib.stats.drift.shared import NOT_ENOUGH_DATA


def combine(results: Sequence[StatResult]) -> StatResult:
    """The month's verdict: drifted if any applicable *error* check is drifted.

    Which checks are errors (they can trigger a retrain) and which only warn:

    * performance drop, label prior: error. They measure what retraining is for: the
      champion is wrong more often, or the class balance it learnt is no longer true.
    * embedding (mean distance, MMD) and prediction (KS, predicted-positive rate): error.
      They need no labels, so they are the only early warning in a month whose labels have
      not arrived; each is a calibrated test, so their false alarms are budgeted.
    * vocabulary OOV and PSI: warn. New words are normal month to month and only matter if
      the embedding or the model's output moves too; PSI duplicates the KS test.

    Value = the number of drifted error checks (threshold 0). p_value = the Bonferroni-adjusted
    minimum p over the applicable error checks, min(1, min_i p_i x total_alpha / alpha_i), so
    ``drifted`` is the same as ``p_value <= total_alpha``. None when no error check could run.
    """
    errors = [r for r in results if r.severity == "error" and r.statistic != COMBINED]
    applicable = [r for r in errors if r.drifted is not None]
    warnings = [r.statistic for r in results if r.severity == "warn" and r.drifted]
    skipped = {r.statistic: r.detail.get("reason", "") for r in errors if r.drifted is None}
    if not applicable:
        return StatResult(
            COMBINED,
            math.nan,
            0.0,
            None,
            None,
            {"reason": NOT_ENOUGH_DATA, "skipped": skipped, "warnings": warnings},
            "combined",
            "error",
        )
    drifted = [r.statistic for r in applicable if r.drifted]
    alphas = [float(r.detail.get("alpha", 0.0)) for r in applicable]
    total_alpha = sum(alphas)
    adjusted = [
        (r.p_value if r.p_value is not None else 1.0) * total_alpha / a
        for r, a in zip(applicable, alphas, strict=True)
        if a > 0
    ]
    p_value = min([1.0, *adjusted])
    return StatResult(
        COMBINED,
        float(len(drifted)),
        0.0,
        bool(drifted),
        float(p_value),
        {
            "alpha": total_alpha,
            "drifted_statistics": drifted,
            "checked": [r.statistic for r in applicable],
            "skipped": skipped,
            "warnings": warnings,
        },
        "combined",
        "error",
    )


def summary(results: Sequence[StatResult]) -> str:
    """The report in one line for people, so a drifted month reads as a finding.

    "drift: 2 of 6 deciding statistics beyond threshold (prediction_ks, label_prior); warning
    only: vocabulary_oov". The count is the combined verdict's value (the deciding, i.e.
    error-severity, statistics beyond their threshold), so the combined check and this line
    agree; warning-only statistics are named apart because they cannot make a month drifted
    on their own, and statistics that could not run are counted with their reasons, never as
    "no drift". The verdict is the combined one (recomputed if ``results`` lacks it).
    """
    combined = next((r for r in results if r.statistic == COMBINED), None) or combine(results)
    checked = [r for r in results if r.statistic != COMBINED]
    deciding = [r for r in checked if r.severity == "error"]
    beyond_error = [r.statistic for r in deciding if r.drifted]
    beyond_warn = [r.statistic for r in checked if r.drifted and r.severity == "warn"]
    line = (
        f"{verdict_word(combined.drifted)}: {len(beyond_error)} of {len(deciding)} deciding "
        "statistics beyond threshold"
    )
    if beyond_error:
        line += f" ({', '.join(beyond_error)})"
    if beyond_warn:
        line += f"; warning only: {', '.join(beyond_warn)}"
    unjudged = Counter(str(r.detail.get("reason", "")) for r in checked if r.drifted is None)
    if unjudged:
        reasons = ", ".join(sorted(reason for reason in unjudged if reason))
        line += f"; {sum(unjudged.values())} not judged" + (f" ({reasons})" if reasons else "")
    return line


def verdict_word(drifted: bool | None) -> str:
    """The words every place that shows a month's verdict uses for the combined `drifted`."""
    return {True: "drift", False: "no drift", None: "not judged"}[drifted]


def not_judged_report(reason: str) -> list[StatResult]:
    """A report that judged nothing (e.g. the month is in the champion's training window):
    one row per statistic and the verdict, each "not judged" with `reason`. Written like any
    report, it is the month's newest verdict wherever one is shown, so an earlier report's
    "drift" never outlives it in metrics.drift_reports or the app."""
    detail = {"reason": reason}
    rows = [
        StatResult(s.name, math.nan, math.nan, None, None, detail, s.kind, s.severity)
        for s in registered()
    ]
    return [*rows, StatResult(COMBINED, math.nan, 0.0, None, None, detail, "combined", "error")]


def drift_report(
    reference: DriftSample,
    current: DriftSample,
    thresholds: DriftThresholds | None = None,
) -> list[StatResult]:
    """Every registered statistic for one (reference, current) pair, in declaration order;
    the combined verdict comes last."""
    th = thresholds if thresholds is not None else DriftThresholds()
    results = [statistic.compute(reference, current, th) for statistic in registered()]
    results.append(combine(results))
    return results


def report_rows(
    results: Sequence[StatResult], month: date, reference: str, champion: str, run_id: str
) -> pd.DataFrame:
    """The report as rows of ``metrics.drift_reports`` (one per statistic)."""
    now = utc_now()
    return pd.DataFrame(
        [
            {
                "month": month,
                "reference": reference,
                "statistic": r.statistic,
                "kind": r.kind,
                "value": r.value,
                "threshold": r.threshold,
                "p_value": r.p_value,
                "drifted": r.drifted,
                "severity": r.severity,
                "detail": json.dumps(r.detail, default=str),
                "champion_version": champion,
                "dagster_run_id": run_id,
                "created_at": now,
            }
            for r in results
        ]
    )
