"""Drift statistics: is this month's data still the world the champion was trained on?

Every check compares a *reference* sample (what the champion was trained and validated on)
with the *current* month and returns a :class:`StatResult` with the statistic's value, the
threshold it was compared with (in the value's own unit, so a table of results reads without
the p-value), the verdict and, for hypothesis tests, the p-value. Each statistic is one
``@statistic`` function (``registry``): embedding, prediction, labels and vocabulary hold them
by kind, ``report`` runs every registered one and combines them.

Design choices, from measurements on MiniLM embeddings of real and synthetic tweets (see
``bench/drift_power.py`` and its results in ``bench/results/drift_power.md``):

* Every verdict is a calibrated test: permutation tests for the embedding statistics, exact
  or asymptotic null distributions for the rest, so the threshold adapts to the window sizes
  and to the spread of the data.
* Embedding tests see topic/domain change and are blind to a pure change of the sentiment
  prior; tests on the champion's output see prior change and are blind to a neutral topic
  change. The combined verdict uses both, plus label-based checks when labels exist.
* Small windows say "not enough data" (``drifted=None``), never "no drift".
* One false-alarm budget for the whole report: each *error* check runs at ``alpha`` and
  there are five of them (see :func:`combine`), so a month with no drift is flagged by the
  combined verdict with probability at most 5 x alpha (Bonferroni).

Pure numpy/scipy: no torch, no Dagster. Every random choice (permutations, subsamples, the
vocabulary split) is drawn from a generator seeded by ``(thresholds.seed, statistic name)``,
so the same inputs give the same report, and one statistic's result does not depend on which
others ran.
"""

# The statistic modules register on import, and their import order is the report's order
# (and the asset checks'): kept by hand, not sorted.
# isort: off
from sentiment_assets.lib.stats.drift.embedding import (
    EMBEDDING_MEAN_DISTANCE,
    EMBEDDING_MMD,
    embedding_mean_distance,
    embedding_mmd,
)
from sentiment_assets.lib.stats.drift.prediction import (
    PREDICTED_POSITIVE_RATE,
    PREDICTION_KS,
    PREDICTION_PSI,
    predicted_positive_rate,
    prediction_ks,
    prediction_psi,
)
from sentiment_assets.lib.stats.drift.labels import (
    LABEL_PRIOR,
    PERFORMANCE_DROP,
    label_prior,
    performance_drop,
)
from sentiment_assets.lib.stats.drift.vocabulary import (
    VOCABULARY_OOV,
    new_keywords,
    tokenize,
    vocabulary_drift,
)

# isort: on
from sentiment_assets.lib.stats.drift.registry import (
    COMBINED,
    DriftSample,
    DriftThresholds,
    Measurement,
    Statistic,
    StatResult,
    Threshold,
    describe,
    registered,
    report_names,
    statistic,
    statistic_named,
    threshold_specs,
    unregister,
)
from sentiment_assets.lib.stats.drift.report import (
    combine,
    drift_report,
    not_judged_report,
    report_rows,
    summary,
    verdict_word,
)
from sentiment_assets.lib.stats.drift.shared import NO_LABELS, NOT_ENOUGH_DATA

__all__ = [
    "COMBINED",
    "EMBEDDING_MEAN_DISTANCE",
    "EMBEDDING_MMD",
    "LABEL_PRIOR",
    "NOT_ENOUGH_DATA",
    "NO_LABELS",
    "PERFORMANCE_DROP",
    "PREDICTED_POSITIVE_RATE",
    "PREDICTION_KS",
    "PREDICTION_PSI",
    "VOCABULARY_OOV",
    "DriftSample",
    "DriftThresholds",
    "Measurement",
    "StatResult",
    "Statistic",
    "Threshold",
    "combine",
    "describe",
    "drift_report",
    "embedding_mean_distance",
    "embedding_mmd",
    "label_prior",
    "new_keywords",
    "not_judged_report",
    "performance_drop",
    "predicted_positive_rate",
    "prediction_ks",
    "prediction_psi",
    "registered",
    "report_names",
    "report_rows",
    "statistic",
    "statistic_named",
    "summary",
    "threshold_specs",
    "tokenize",
    "unregister",
    "verdict_word",
    "vocabulary_drift",
]
