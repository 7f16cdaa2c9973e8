"""The drift report's one-line summary (pure)."""

import math

from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.stats.drift import StatResult, combine


def stat(name: str, drifted: bool | None) -> StatResult:
    """A result with only what the summary reads: name, verdict, severity (and a reason)."""
    spec = drift.statistic_named(name)
    if drifted is None:
        reason = {"reason": drift.NOT_ENOUGH_DATA}
        return StatResult(name, math.nan, math.nan, None, None, reason, spec.kind, spec.severity)
    p_value = 0.001 if drifted else 0.5
    detail = {"alpha": 0.01}
    return StatResult(name, 0.1, 0.05, drifted, p_value, detail, spec.kind, spec.severity)


def report(drifted: set[str], unjudged: frozenset[str] = frozenset()) -> list[StatResult]:
    statistics = [s.name for s in drift.registered()]
    results = [stat(s, None if s in unjudged else s in drifted) for s in statistics]
    return [*results, combine(results)]


def test_a_drifted_report_names_its_statistics_with_warnings_apart():
    results = report({drift.LABEL_PRIOR, drift.PREDICTION_KS, drift.VOCABULARY_OOV})
    assert drift.summary(results) == (
        "drift: 2 of 6 deciding statistics beyond threshold (prediction_ks, label_prior); "
        "warning only: vocabulary_oov"
    )


def test_the_summary_counts_what_the_combined_value_counts():
    results = report({drift.LABEL_PRIOR, drift.PREDICTION_KS, drift.VOCABULARY_OOV})
    combined = results[-1]
    assert drift.summary(results).startswith(f"drift: {int(combined.value)} of 6 deciding")


def test_an_undrifted_report_says_so_even_with_a_warning():
    assert drift.summary(report(set())) == "no drift: 0 of 6 deciding statistics beyond threshold"
    assert drift.summary(report({drift.PREDICTION_PSI})) == (
        "no drift: 0 of 6 deciding statistics beyond threshold; warning only: prediction_psi"
    )


def test_statistics_that_could_not_run_are_counted_never_called_no_drift():
    some = frozenset({drift.LABEL_PRIOR, drift.PERFORMANCE_DROP})
    assert drift.summary(report(set(), some)) == (
        "no drift: 0 of 6 deciding statistics beyond threshold; 2 not judged (not enough data)"
    )
    every = frozenset(s.name for s in drift.registered())
    assert drift.summary(report(set(), every)).startswith("not judged: 0 of 6 deciding")


def test_the_summary_computes_the_verdict_when_the_combined_result_is_missing():
    results = report({drift.EMBEDDING_MMD})[:-1]
    assert drift.summary(results).startswith("drift: 1 of 6 deciding statistics beyond")
