"""Drift statistics: is this month's data still the world the champion was trained on?

Every check compares a *reference* sample (what the champion was trained and validated on)
with the *current* month and returns a :class:`StatResult` with the statistic's value, the
threshold it was compared with (in the value's own unit, so a table of results reads without
the p-value), the verdict and, for hypothesis tests, the p-value.

Design choices, from measurements on MiniLM embeddings of real and synthetic tweets (see
``bench/drift_power.py`` and its results in ``bench/results/drift_power.md``):

* Fixed thresholds borrowed from other libraries do not transfer to normalised sentence
  embeddings (a real month-to-month shift moves the mean embedding by only 0.04-0.12), so
  every verdict here is a calibrated test: permutation tests for the embedding statistics,
  exact or asymptotic null distributions for the rest. The threshold therefore adapts to the
  window sizes and to the spread of the data.
* Embedding tests see topic/domain change and are blind to a pure change of the sentiment
  prior; tests on the champion's output see prior change and are blind to a neutral topic
  change. The combined verdict uses both, plus label-based checks when labels exist.
* Small windows say "not enough data" (``drifted=None``), never "no drift".
* One false-alarm budget for the whole report: each *error* check runs at ``alpha`` and
  there are five of them (see :func:`combine`), so a month with no drift is flagged by the
  combined verdict with probability at most 5 x alpha (Bonferroni).

The module is pure numpy/scipy: no torch, no Dagster. Every random choice (permutations,
subsamples, the vocabulary split) is drawn from a generator seeded by
``(thresholds.seed, statistic name)``, so the same inputs give the same report, and one
statistic's result does not depend on which others ran.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from sentiment_assets.lib.stats.metrics import DECISION_THRESHOLD

KINDS = ("embedding", "prediction", "label", "performance", "vocabulary", "combined")
SEVERITIES = ("warn", "error")

EMBEDDING_MEAN_DISTANCE = "embedding_mean_distance"
EMBEDDING_MMD = "embedding_mmd"
PREDICTION_KS = "prediction_ks"
PREDICTION_PSI = "prediction_psi"
PREDICTED_POSITIVE_RATE = "predicted_positive_rate"
LABEL_PRIOR = "label_prior"
PERFORMANCE_DROP = "performance_drop"
VOCABULARY_OOV = "vocabulary_oov"
COMBINED = "combined"
STATISTICS = (
    EMBEDDING_MEAN_DISTANCE,
    EMBEDDING_MMD,
    PREDICTION_KS,
    PREDICTION_PSI,
    PREDICTED_POSITIVE_RATE,
    LABEL_PRIOR,
    PERFORMANCE_DROP,
    VOCABULARY_OOV,
    COMBINED,
)

# Severity of each statistic (see combine() for why): error checks can trigger a retrain.
SEVERITY = {
    EMBEDDING_MEAN_DISTANCE: "error",
    EMBEDDING_MMD: "error",
    PREDICTION_KS: "error",
    PREDICTION_PSI: "warn",
    PREDICTED_POSITIVE_RATE: "error",
    LABEL_PRIOR: "error",
    PERFORMANCE_DROP: "error",
    VOCABULARY_OOV: "warn",
    COMBINED: "error",
}

NOT_ENOUGH_DATA = "not enough data"
NO_LABELS = "not applicable: no labels"

# Function words and the placeholders clean_text() puts in place of URLs and mentions: they
# are in every month, so they only dilute the OOV rate and crowd the keyword list.
STOP_WORDS = frozenset(
    """
    a an the and or but if so of to in on at by for with from as is am are was were be been
    being it its this that these those there here i me my we our you your he him his she
    her they them their what which who whom do does did have has had not no just than then too
    very can will would should could im http https www user
    """.split()  # noqa: SIM905 (a word block reads better than 80 quoted strings)
)
_SPLIT = re.compile(r"\W+")


@dataclass(frozen=True)
class StatResult:
    """One drift statistic for one (reference, current) pair.

    ``drifted`` is None when the check could not run (too few rows, no labels); the reason is
    in ``detail["reason"]`` and ``value``/``threshold`` are NaN. For a test, ``drifted`` is
    ``p_value <= detail["alpha"]``, which is the same as ``value`` beyond ``threshold``.
    ``detail`` holds only JSON-serialisable values (str, int, float, bool, None, list, dict).
    """

    statistic: str
    value: float
    threshold: float
    drifted: bool | None
    p_value: float | None
    detail: dict
    kind: str
    severity: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON, metadata or a table row)."""
        return asdict(self)


@dataclass(frozen=True)
class DriftThresholds:
    """Configuration of the drift checks; the defaults are what the benchmark measured."""

    alpha: float = 0.01
    """False-alarm probability of each *error* check. There are five (embedding, prediction
    score distribution, predicted-positive rate, label prior, performance), so a month without
    drift is flagged by the combined verdict with probability <= 5 x 0.01 = 5% (Bonferroni; the
    checks are positively correlated, which makes the real rate lower). The embedding check
    runs two tests (mean distance and MMD) at alpha/2 each so that it counts once. The *warn*
    checks (PSI, vocabulary) also run at alpha but do not enter the combined verdict."""

    min_samples: int = 200
    """Fewest rows per side (with a score, a label, ... as the check needs) for a verdict;
    below it the check reports drifted=None with reason "not enough data". 200 is a floor, not
    a recommendation: power at the default magnitudes needs about 1,000 rows per side."""

    permutations: int = 1000
    """Permutations of the pooled rows for the embedding tests. The smallest attainable
    p-value is 1/(permutations+1), so at least 2/alpha are needed for alpha/2 to be
    reachable; 1000 resolves p-values near alpha/2 = 0.005 to about +-0.002."""

    max_subsample: int = 1000
    """Rows drawn per side for the O(n^2) kernel test (MMD): keeps its memory near 50 MB and
    its time under a second. The mean-distance test uses all rows."""

    accuracy_tolerance: float = 0.03
    """Accuracy loss (reference minus current) that is tolerated: the performance check only
    flags a drop that is significantly larger than this, so sampling noise and tiny losses do
    not trigger retraining."""

    psi_bins: int = 10
    """Quantile bins of the reference scores for the population stability index."""

    vocab_min_count: int = 2
    """A token belongs to the reference vocabulary if it occurs at least this often there."""

    keyword_min_count: int = 5
    """Fewest tweets of the current month that must use a token for it to be a new keyword."""

    top_keywords: int = 10
    """How many new keywords the vocabulary check lists in its detail."""

    seed: int = 0
    """Seed of every random choice (permutations, subsamples, vocabulary split)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError("alpha must be within (0, 0.5)")
        if self.min_samples < 2:
            raise ValueError("min_samples must be >= 2")
        if self.permutations < 2 / self.alpha:
            raise ValueError(
                f"permutations must be >= 2/alpha = {2 / self.alpha:.0f} so that a p-value "
                "of alpha/2 is reachable"
            )
        if self.max_subsample < 2 or self.psi_bins < 2 or self.top_keywords < 0:
            raise ValueError("max_subsample and psi_bins must be >= 2, top_keywords >= 0")
        if not 0.0 <= self.accuracy_tolerance < 1.0:
            raise ValueError("accuracy_tolerance must be within [0, 1)")


@dataclass
class DriftSample:
    """One side of a comparison.

    ``embeddings``: (n, d) float32 sentence embeddings of the texts.
    ``scores``: (n,) the champion's P(positive); NaN where no out-of-sample score exists. The
    reference side must not carry scores of rows the champion was trained on (in-sample scores
    are over-confident and their accuracy optimistic, which would look like drift): give NaN
    there and real scores only for held-out rows.
    ``texts``: the n (cleaned) texts.
    ``labels``: (n,) 0/1, or None when the side has no labels; entries other than 0 and 1
    (NaN, -1) mark unlabelled rows.
    """

    embeddings: np.ndarray
    scores: np.ndarray
    texts: list[str]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if self.embeddings.ndim != 2:
            raise ValueError("embeddings must be a 2-D (n, d) array")
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.texts = [str(t) for t in self.texts]
        n = self.embeddings.shape[0]
        if len(self.scores) != n or len(self.texts) != n:
            raise ValueError(
                f"embeddings ({n}), scores ({len(self.scores)}) and texts ({len(self.texts)}) "
                "must have one row per tweet"
            )
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.float64).reshape(-1)
            if len(self.labels) != n:
                raise ValueError(f"labels ({len(self.labels)}) must have {n} rows")

    def __len__(self) -> int:
        return self.embeddings.shape[0]


# --- helpers ----------------------------------------------------------------------------------


def _rng(thresholds: DriftThresholds, statistic: str) -> np.random.Generator:
    # Keyed by the statistic's name: adding or reordering checks never changes another's draw.
    return np.random.default_rng([thresholds.seed, zlib.crc32(statistic.encode())])


def _skipped(statistic: str, kind: str, severity: str, reason: str, **detail: Any) -> StatResult:
    return StatResult(
        statistic, math.nan, math.nan, None, None, {"reason": reason, **detail}, kind, severity
    )


def _too_small(
    statistic: str, kind: str, severity: str, n_reference: int, n_current: int, minimum: int
) -> StatResult | None:
    if min(n_reference, n_current) >= minimum:
        return None
    return _skipped(
        statistic,
        kind,
        severity,
        NOT_ENOUGH_DATA,
        n_reference=int(n_reference),
        n_current=int(n_current),
        min_samples=int(minimum),
    )


def _matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D (n, d) array, got shape {x.shape}")
    return x


def _labels(labels: np.ndarray | Sequence[float] | None) -> np.ndarray | None:
    return None if labels is None else np.asarray(labels, dtype=np.float64).reshape(-1)


def _labelled(labels: np.ndarray) -> np.ndarray:
    return (labels == 0) | (labels == 1)


def _permutation_threshold(null_desc: np.ndarray, alpha: float) -> float:
    """Value above which the permutation p-value (1 + #null >= value)/(P + 1) is <= alpha."""
    k = math.floor(alpha * (len(null_desc) + 1) - 1 + 1e-9)
    return float(null_desc[k]) if k >= 0 else math.inf


def _permutation_result(
    statistic: str,
    observed: float,
    null: np.ndarray,
    alpha: float,
    detail: dict,
) -> StatResult:
    null_desc = np.sort(null)[::-1]
    exceed = int(np.count_nonzero(null >= observed))
    p_value = (1 + exceed) / (len(null) + 1)
    threshold = _permutation_threshold(null_desc, alpha)
    detail = {
        **detail,
        "alpha": alpha,
        "permutations": len(null),
        "null_mean": float(null.mean()),
        "null_max": float(null_desc[0]),
    }
    return StatResult(
        statistic,
        float(observed),
        threshold,
        bool(p_value <= alpha),
        float(p_value),
        detail,
        "embedding",
        "error",
    )


# Cells of one block of permutation masks (float32): 16 MB, whatever the window size.
_MASK_CELLS = 4_000_000


def _permutation_statistics(
    rng: np.random.Generator,
    n_a: int,
    n_b: int,
    permutations: int,
    statistic: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """``statistic(masks)`` for the observed split (first value) and ``permutations`` shuffles.

    A mask is a 0/1 float32 row over the pooled rows (1 = reference). Vectorised statistics
    take a whole block of masks at once, so a thousand permutations cost a few matrix
    products; blocks keep memory bounded for long windows.
    """
    base = np.concatenate([np.ones(n_a, dtype=np.float32), np.zeros(n_b, dtype=np.float32)])
    values = [statistic(base[None, :])]
    block = max(1, _MASK_CELLS // len(base))
    for start in range(0, permutations, block):
        rows = min(block, permutations - start)
        values.append(statistic(rng.permuted(np.tile(base, (rows, 1)), axis=1)))
    return np.concatenate(values)


def _two_proportion(
    x_ref: int, n_ref: int, x_cur: int, n_cur: int, alpha: float
) -> tuple[float, float, float]:
    """|difference| of two proportions, its two-sided critical value and p (pooled z-test)."""
    p_ref, p_cur = x_ref / n_ref, x_cur / n_cur
    pooled = (x_ref + x_cur) / (n_ref + n_cur)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    diff = abs(p_cur - p_ref)
    if se == 0.0:  # both sides all 0 or all 1: identical, nothing to test
        return diff, math.inf, 1.0
    z_crit = float(stats.norm.isf(alpha / 2))
    p_value = float(2 * stats.norm.sf(diff / se))
    return diff, z_crit * se, p_value


# --- embedding drift --------------------------------------------------------------------------


def embedding_mean_distance(
    reference: np.ndarray, current: np.ndarray, thresholds: DriftThresholds
) -> StatResult:
    """Euclidean distance between the mean embeddings, with a permutation p-value.

    Sensitive to any shift of the centre of the embedding cloud (new topics, a changed mix of
    topics or sentiments); cheap enough to use every row, since a block of permutations is
    one matrix product. Tested at alpha/2 (it shares the embedding check's budget with the
    MMD test).
    """
    name = EMBEDDING_MEAN_DISTANCE
    reference, current = _matrix(reference), _matrix(current)
    skipped = _too_small(
        name, "embedding", "error", len(reference), len(current), thresholds.min_samples
    )
    if skipped:
        return skipped
    pooled = np.vstack([reference, current]).astype(np.float32)
    # Centring first keeps float32 sums accurate (the mean of unit vectors is far from 0).
    pooled -= pooled.mean(axis=0, keepdims=True)
    n_a, n_b = len(reference), len(current)
    scale = np.float32(1.0 / n_a + 1.0 / n_b)

    def distance(masks: np.ndarray) -> np.ndarray:
        # The pooled sum is 0 after centring, so mean_a - mean_b = sum_a (1/n_a + 1/n_b).
        diffs = (masks @ pooled) * scale
        return np.sqrt(np.einsum("ij,ij->i", diffs, diffs, dtype=np.float64))

    distances = _permutation_statistics(
        _rng(thresholds, name), n_a, n_b, thresholds.permutations, distance
    )
    return _permutation_result(
        name,
        float(distances[0]),
        distances[1:],
        thresholds.alpha / 2,
        {"n_reference": n_a, "n_current": n_b, "dim": int(pooled.shape[1])},
    )


def _subsample(x: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= cap:
        return x
    return x[np.sort(rng.choice(len(x), size=cap, replace=False))]


def embedding_mmd(
    reference: np.ndarray, current: np.ndarray, thresholds: DriftThresholds
) -> StatResult:
    """Maximum mean discrepancy (RBF kernel, median-heuristic bandwidth), permutation p-value.

    Catches changes of shape that leave the mean in place (a topic that splits, a cluster
    that grows while another shrinks), which the mean distance misses. O(n^2): at most
    ``max_subsample`` rows per side. Value = biased MMD^2 (V-statistic) on the subsample.
    Tested at alpha/2 (it shares the embedding check's budget with the mean distance).
    """
    name = EMBEDDING_MMD
    reference, current = _matrix(reference), _matrix(current)
    skipped = _too_small(
        name, "embedding", "error", len(reference), len(current), thresholds.min_samples
    )
    if skipped:
        return skipped
    rng = _rng(thresholds, name)
    ref = _subsample(reference, thresholds.max_subsample, rng)
    cur = _subsample(current, thresholds.max_subsample, rng)
    pooled = np.vstack([ref, cur]).astype(np.float64)
    sq_norms = np.einsum("ij,ij->i", pooled, pooled)
    sq_dist = np.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * (pooled @ pooled.T), 0.0)
    off_diagonal = sq_dist[np.triu_indices(len(pooled), k=1)]
    # Median heuristic: the bandwidth is the median pairwise distance, so the kernel neither
    # saturates (all ~1) nor vanishes (all ~0) whatever the embedding's scale.
    sigma2 = float(np.median(off_diagonal))
    if sigma2 <= 0.0:
        sigma2 = 1.0
    kernel = np.exp(-sq_dist / (2.0 * sigma2)).astype(np.float32)
    n_a, n_b = len(ref), len(cur)
    scale, offset = np.float32(1.0 / n_a + 1.0 / n_b), np.float32(1.0 / n_b)

    def mmd_squared(masks: np.ndarray) -> np.ndarray:
        # MMD^2_b = w' K w with w = +1/n_a on group A and -1/n_b on group B.
        weights = masks * scale - offset
        return np.einsum("ij,ij->i", weights @ kernel, weights, dtype=np.float64)

    mmd2 = _permutation_statistics(rng, n_a, n_b, thresholds.permutations, mmd_squared)
    return _permutation_result(
        name,
        float(mmd2[0]),
        mmd2[1:],
        thresholds.alpha / 2,
        {
            "n_reference": len(reference),
            "n_current": len(current),
            "n_subsample_reference": n_a,
            "n_subsample_current": n_b,
            "bandwidth": math.sqrt(sigma2),
        },
    )


# --- prediction drift -------------------------------------------------------------------------


def _finite(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    return scores[np.isfinite(scores)]


def prediction_ks(
    reference_scores: np.ndarray, current_scores: np.ndarray, thresholds: DriftThresholds
) -> StatResult:
    """Two-sample Kolmogorov-Smirnov test on the champion's P(positive).

    "Black-box shift detection" (Rabanser et al. 2019): the model's output distribution moves
    with the sentiment prior and with any input change the model reacts to, and a 1-D test has
    far more power than a 384-D one. Value = KS D; threshold = the asymptotic critical D.
    """
    name = PREDICTION_KS
    ref, cur = _finite(reference_scores), _finite(current_scores)
    skipped = _too_small(name, "prediction", "error", len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    result = stats.ks_2samp(ref, cur, method="asymp")
    # scipy's asymptotic p-value is kstwo.sf(D, round(en)); invert the same distribution so
    # that value > threshold exactly when p <= alpha.
    en = round(len(ref) * len(cur) / (len(ref) + len(cur)))
    threshold = float(stats.kstwo.isf(thresholds.alpha, en))
    p_value = float(result.pvalue)
    return StatResult(
        name,
        float(result.statistic),
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "n_reference": len(ref),
            "n_current": len(cur),
            "mean_score_reference": float(ref.mean()),
            "mean_score_current": float(cur.mean()),
        },
        "prediction",
        "error",
    )


def prediction_psi(
    reference_scores: np.ndarray, current_scores: np.ndarray, thresholds: DriftThresholds
) -> StatResult:
    """Population stability index of the scores over quantile bins of the reference.

    Reported because credit-risk style dashboards speak PSI, but judged with a calibrated
    threshold instead of the folklore 0.1/0.25 (which depend on the window size): for small
    shifts PSI / (1/n_ref + 1/n_cur) is the chi-square homogeneity statistic with bins - 1
    degrees of freedom. Severity warn: it overlaps with the KS test, which decides.
    """
    name = PREDICTION_PSI
    ref, cur = _finite(reference_scores), _finite(current_scores)
    skipped = _too_small(name, "prediction", "warn", len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    interior = np.quantile(ref, np.linspace(0, 1, thresholds.psi_bins + 1)[1:-1])
    edges = np.unique(interior)  # ties in the scores merge bins
    n_bins = len(edges) + 1
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=n_bins)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=n_bins)
    # Half-count floor: an empty bin would make the log ratio infinite.
    p = np.maximum(ref_counts, 0.5) / len(ref)
    q = np.maximum(cur_counts, 0.5) / len(cur)
    psi = float(np.sum((q - p) * np.log(q / p)))
    scale = 1.0 / len(ref) + 1.0 / len(cur)
    dof = max(n_bins - 1, 1)
    threshold = float(stats.chi2.isf(thresholds.alpha, dof)) * scale
    p_value = float(stats.chi2.sf(psi / scale, dof))
    band = "stable" if psi < 0.1 else "moderate" if psi < 0.25 else "major"
    return StatResult(
        name,
        psi,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "bins": n_bins,
            "n_reference": len(ref),
            "n_current": len(cur),
            "conventional_band": band,
            "current_share_per_bin": [round(float(x), 4) for x in cur_counts / len(cur)],
        },
        "prediction",
        "warn",
    )


def predicted_positive_rate(
    reference_scores: np.ndarray, current_scores: np.ndarray, thresholds: DriftThresholds
) -> StatResult:
    """Two-proportion z-test on the share of tweets the champion calls positive.

    The number users see move; also more powerful than KS when the shift sits right at the
    decision threshold. Value = |current - reference| share.
    """
    name = PREDICTED_POSITIVE_RATE
    ref, cur = _finite(reference_scores), _finite(current_scores)
    skipped = _too_small(name, "prediction", "error", len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    x_ref = int(np.count_nonzero(ref >= DECISION_THRESHOLD))
    x_cur = int(np.count_nonzero(cur >= DECISION_THRESHOLD))
    return _proportion_result(
        name, "prediction", "rate", x_ref, len(ref), x_cur, len(cur), thresholds
    )


def _proportion_result(
    name: str,
    kind: str,
    share: str,
    x_ref: int,
    n_ref: int,
    x_cur: int,
    n_cur: int,
    thresholds: DriftThresholds,
) -> StatResult:
    """A two-proportion z-test as a StatResult; `share` names the proportion in detail."""
    diff, threshold, p_value = _two_proportion(x_ref, n_ref, x_cur, n_cur, thresholds.alpha)
    return StatResult(
        name,
        diff,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            f"{share}_reference": x_ref / n_ref,
            f"{share}_current": x_cur / n_cur,
            "n_reference": n_ref,
            "n_current": n_cur,
        },
        kind,
        "error",
    )


# --- label-based checks -----------------------------------------------------------------------


def label_prior(
    reference_labels: np.ndarray | None,
    current_labels: np.ndarray | None,
    thresholds: DriftThresholds,
) -> StatResult:
    """Two-proportion z-test on the share of positive labels (prior / label shift).

    Only when both sides carry labels. Value = |current - reference| positive share.
    """
    name = LABEL_PRIOR
    reference_labels, current_labels = _labels(reference_labels), _labels(current_labels)
    if reference_labels is None or current_labels is None:
        return _skipped(name, "label", "error", NO_LABELS)
    ref = reference_labels[_labelled(reference_labels)]
    cur = current_labels[_labelled(current_labels)]
    skipped = _too_small(name, "label", "error", len(ref), len(cur), thresholds.min_samples)
    if skipped:
        return skipped
    x_ref, x_cur = int(ref.sum()), int(cur.sum())
    return _proportion_result(
        name, "label", "positive_share", x_ref, len(ref), x_cur, len(cur), thresholds
    )


def performance_drop(
    reference_scores: np.ndarray,
    reference_labels: np.ndarray | None,
    current_scores: np.ndarray,
    current_labels: np.ndarray | None,
    thresholds: DriftThresholds,
) -> StatResult:
    """One-sided test that the champion's accuracy fell by more than the tolerance.

    H0: reference accuracy - current accuracy <= tolerance. Value = reference minus current
    accuracy (positive = worse now); threshold = tolerance + z_(1-alpha) x standard error.
    The reference accuracy must come from rows the champion did not train on (see
    :class:`DriftSample`). Rows need both a score and a label.
    """
    name = PERFORMANCE_DROP
    reference_labels, current_labels = _labels(reference_labels), _labels(current_labels)
    if reference_labels is None or current_labels is None:
        return _skipped(name, "performance", "error", NO_LABELS)
    reference_scores = np.asarray(reference_scores, dtype=np.float64).reshape(-1)
    current_scores = np.asarray(current_scores, dtype=np.float64).reshape(-1)
    ref_ok = _labelled(reference_labels) & np.isfinite(reference_scores)
    cur_ok = _labelled(current_labels) & np.isfinite(current_scores)
    n_ref, n_cur = int(ref_ok.sum()), int(cur_ok.sum())
    skipped = _too_small(name, "performance", "error", n_ref, n_cur, thresholds.min_samples)
    if skipped:
        return skipped
    acc_ref = float(
        np.mean((reference_scores[ref_ok] >= DECISION_THRESHOLD) == (reference_labels[ref_ok] == 1))
    )
    acc_cur = float(
        np.mean((current_scores[cur_ok] >= DECISION_THRESHOLD) == (current_labels[cur_ok] == 1))
    )

    def clipped(acc: float, n: int) -> float:
        # A perfect (or useless) side would have zero variance; half a count keeps SE honest.
        return min(max(acc, 0.5 / n), 1 - 0.5 / n)

    a_ref, a_cur = clipped(acc_ref, n_ref), clipped(acc_cur, n_cur)
    se = math.sqrt(a_ref * (1 - a_ref) / n_ref + a_cur * (1 - a_cur) / n_cur)
    drop = acc_ref - acc_cur
    p_value = float(stats.norm.sf((drop - thresholds.accuracy_tolerance) / se))
    threshold = thresholds.accuracy_tolerance + float(stats.norm.isf(thresholds.alpha)) * se
    return StatResult(
        name,
        drop,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "accuracy_reference": acc_ref,
            "accuracy_current": acc_cur,
            "tolerance": thresholds.accuracy_tolerance,
            "n_reference": n_ref,
            "n_current": n_cur,
        },
        "performance",
        "error",
    )


# --- vocabulary drift -------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens: split on non-word characters, drop 1-letter and stop words."""
    return [t for t in _SPLIT.split(text.lower()) if len(t) >= 2 and t not in STOP_WORDS]


def _oov_rate(
    docs: Sequence[list[str]], vocabulary: set[str] | frozenset[str]
) -> tuple[float, float, int]:
    """Token-level OOV rate, its variance (tweets as clusters) and the number of tokens."""
    oov = np.fromiter((sum(t not in vocabulary for t in d) for d in docs), float, len(docs))
    size = np.fromiter((len(d) for d in docs), float, len(docs))
    total = float(size.sum())
    if total == 0:
        return 0.0, 0.0, 0
    rate = float(oov.sum()) / total
    # Ratio-estimator (delta-method) variance: tokens of one tweet are not independent, so
    # the tweet is the sampling unit.
    n = len(docs)
    residual = oov - rate * size
    variance = float(residual @ residual) / total**2 * n / max(n - 1, 1)
    return rate, variance, int(total)


def new_keywords(
    reference_docs: Sequence[list[str]],
    current_docs: Sequence[list[str]],
    top: int = 10,
    min_count: int = 5,
    prior: float = 0.5,
) -> list[dict[str, Any]]:
    """Tokens used by more tweets now than before, ranked by a smoothed log-odds ratio.

    Counts are tweets containing the token (not occurrences), so one spam tweet repeating a
    word cannot make it a keyword. Add-``prior`` smoothing keeps a word absent from the
    reference finite: among such words the most used now ranks first. ``min_count`` (tweets)
    keeps one-off typos out. ``z`` is the log-odds over its standard error, for readers who
    want to know how sure the ranking is.
    """
    ref_df = Counter(t for d in reference_docs for t in set(d))
    cur_df = Counter(t for d in current_docs for t in set(d))
    n_ref, n_cur = len(reference_docs), len(current_docs)
    rows = []
    for token, y_cur in cur_df.items():
        if y_cur < min_count:
            continue
        y_ref = ref_df.get(token, 0)
        log_odds = math.log((y_cur + prior) / (n_cur - y_cur + prior)) - math.log(
            (y_ref + prior) / (n_ref - y_ref + prior)
        )
        if log_odds <= 0:
            continue
        se = math.sqrt(
            1 / (y_cur + prior)
            + 1 / (n_cur - y_cur + prior)
            + 1 / (y_ref + prior)
            + 1 / (n_ref - y_ref + prior)
        )
        rows.append(
            {
                "token": token,
                "tweets_current": y_cur,
                "tweets_reference": y_ref,
                "log_odds": round(log_odds, 4),
                "z": round(log_odds / se, 3),
            }
        )
    rows.sort(key=lambda r: (-r["log_odds"], r["token"]))
    return rows[:top]


def vocabulary_drift(
    reference_texts: Sequence[str], current_texts: Sequence[str], thresholds: DriftThresholds
) -> StatResult:
    """Out-of-vocabulary rate of the current month, calibrated on the reference itself.

    The reference is split at random into halves A and B. The vocabulary is A's tokens seen at
    least ``vocab_min_count`` times; B's OOV rate against it is what an undrifted month scores
    (every corpus has rare words, typos and names), and the current month's OOV rate against
    the same vocabulary is tested against it (one-sided z-test, tweets as clusters). Using half
    A for both keeps the comparison fair: a bigger vocabulary would lower every OOV rate.
    Value = the current OOV rate; threshold = B's rate + z_(1-alpha) x standard error. The
    top new keywords (against the whole reference) are in ``detail["new_keywords"]``. Severity
    warn: new words alone do not mean the model is wrong, but they tell what changed.
    """
    name = VOCABULARY_OOV
    skipped = _too_small(
        name, "vocabulary", "warn", len(reference_texts), len(current_texts), thresholds.min_samples
    )
    if skipped:
        return skipped
    ref_docs = [tokenize(t) for t in reference_texts]
    cur_docs = [tokenize(t) for t in current_texts]
    order = _rng(thresholds, name).permutation(len(ref_docs))
    half = len(order) // 2
    half_a = [ref_docs[i] for i in order[:half]]
    half_b = [ref_docs[i] for i in order[half:]]
    counts_a = Counter(t for d in half_a for t in d)
    vocabulary = {t for t, c in counts_a.items() if c >= thresholds.vocab_min_count}
    base_rate, base_var, base_tokens = _oov_rate(half_b, vocabulary)
    cur_rate, cur_var, cur_tokens = _oov_rate(cur_docs, vocabulary)
    se = math.sqrt(base_var + cur_var)
    if se == 0.0:
        p_value = 1.0 if cur_rate <= base_rate else 0.0
    else:
        p_value = float(stats.norm.sf((cur_rate - base_rate) / se))
    threshold = base_rate + float(stats.norm.isf(thresholds.alpha)) * se
    full_counts = Counter(t for d in ref_docs for t in d)
    full_vocabulary = {t for t, c in full_counts.items() if c >= thresholds.vocab_min_count}
    full_rate, _, _ = _oov_rate(cur_docs, full_vocabulary)
    return StatResult(
        name,
        cur_rate,
        threshold,
        bool(p_value <= thresholds.alpha),
        p_value,
        {
            "alpha": thresholds.alpha,
            "oov_rate_reference_heldout": base_rate,
            "oov_rate_current_vs_full_reference": full_rate,
            "vocabulary_size": len(vocabulary),
            "tokens_reference_heldout": base_tokens,
            "tokens_current": cur_tokens,
            "new_keywords": new_keywords(
                ref_docs, cur_docs, thresholds.top_keywords, thresholds.keyword_min_count
            ),
        },
        "vocabulary",
        "warn",
    )


# --- verdict ----------------------------------------------------------------------------------


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
    """The report in one line for people, so a red check reads as a finding, not a failure.

    "drift: 4 of 8 statistics beyond threshold (label_prior, prediction_ks, ...; warn:
    vocabulary_oov)". The verdict is the combined one (recomputed if ``results`` lacks it);
    warn statistics are listed apart because they cannot make a month drifted on their own,
    and statistics that could not run are counted with their reasons, never as "no drift".
    """
    combined = next((r for r in results if r.statistic == COMBINED), None) or combine(results)
    checked = [r for r in results if r.statistic != COMBINED]
    beyond_error = [r.statistic for r in checked if r.drifted and r.severity == "error"]
    beyond_warn = [r.statistic for r in checked if r.drifted and r.severity == "warn"]
    verdict = {True: "drift", False: "no drift", None: "not judged"}[combined.drifted]
    line = (
        f"{verdict}: {len(beyond_error) + len(beyond_warn)} of {len(checked)} statistics "
        "beyond threshold"
    )
    if beyond_error or beyond_warn:
        warn = f"warn: {', '.join(beyond_warn)}" if beyond_warn else ""
        line += f" ({'; '.join(part for part in (', '.join(beyond_error), warn) if part)})"
    unjudged = Counter(str(r.detail.get("reason", "")) for r in checked if r.drifted is None)
    if unjudged:
        reasons = ", ".join(sorted(reason for reason in unjudged if reason))
        line += f"; {sum(unjudged.values())} not judged" + (f" ({reasons})" if reasons else "")
    return line


def drift_report(
    reference: DriftSample,
    current: DriftSample,
    thresholds: DriftThresholds | None = None,
) -> list[StatResult]:
    """Every statistic for one (reference, current) pair; the combined verdict comes last."""
    th = thresholds if thresholds is not None else DriftThresholds()
    results = [
        embedding_mean_distance(reference.embeddings, current.embeddings, th),
        embedding_mmd(reference.embeddings, current.embeddings, th),
        prediction_ks(reference.scores, current.scores, th),
        prediction_psi(reference.scores, current.scores, th),
        predicted_positive_rate(reference.scores, current.scores, th),
        label_prior(reference.labels, current.labels, th),
        performance_drop(reference.scores, reference.labels, current.scores, current.labels, th),
        vocabulary_drift(reference.texts, current.texts, th),
    ]
    results.append(combine(results))
    return results


__all__ = [
    "COMBINED",
    "SEVERITY",
    "STATISTICS",
    "DriftSample",
    "DriftThresholds",
    "StatResult",
    "combine",
    "drift_report",
    "embedding_mean_distance",
    "embedding_mmd",
    "label_prior",
    "new_keywords",
    "performance_drop",
    "predicted_positive_rate",
    "prediction_ks",
    "prediction_psi",
    "summary",
    "tokenize",
    "vocabulary_drift",
]
