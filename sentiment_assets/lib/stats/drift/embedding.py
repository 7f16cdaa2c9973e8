"""Embedding drift: has the cloud of sentence embeddings moved (new topics, a changed mix)?

Both tests are permutation tests: fixed thresholds borrowed from other libraries do not
transfer to normalised sentence embeddings (a real month-to-month shift moves the mean
embedding by only 0.04-0.12), so the threshold comes from the permuted data and adapts to the
window sizes and to the spread of the data. Each runs at alpha/2: together they are one
error check of the combined verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from sentiment_assets.lib.stats.drift.registry import (
    DriftThresholds,
    Measurement,
    Threshold,
    statistic,
)
from sentiment_assets.lib.stats.drift.shared import seeded_rng, too_small

EMBEDDING_MEAN_DISTANCE = "embedding_mean_distance"
EMBEDDING_MMD = "embedding_mmd"

# Declared by both embedding statistics: one object, so they share the value.
PERMUTATIONS = Threshold(
    1000,
    """Permutations of the pooled rows for the embedding tests. The smallest attainable
    p-value is 1/(permutations+1), so at least 2/alpha are needed for alpha/2 to be
    reachable; 1000 resolves p-values near alpha/2 = 0.005 to about +-0.002.""",
    lambda permutations, values: permutations >= 2 / values["alpha"],
    "must be >= 2/alpha so that a p-value of alpha/2 is reachable",
)
MAX_SUBSAMPLE = Threshold(
    1000,
    """Rows drawn per side for the O(n^2) kernel test (MMD): keeps its memory near 50 MB and
    its time under a second. The mean-distance test uses all rows.""",
    lambda rows, _: rows >= 2,
    "must be >= 2",
)

# Cells of one block of permutation masks (float32): 16 MB, whatever the window size.
_MASK_CELLS = 4_000_000


def _matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D (n, d) array, got shape {x.shape}")
    return x


def _permutation_threshold(null_desc: np.ndarray, alpha: float) -> float:
    """Value above which the permutation p-value (1 + #null >= value)/(P + 1) is <= alpha."""
    k = math.floor(alpha * (len(null_desc) + 1) - 1 + 1e-9)
    return float(null_desc[k]) if k >= 0 else math.inf


def _permutation_result(
    observed: float, null: np.ndarray, alpha: float, detail: dict
) -> Measurement:
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
    return Measurement(float(observed), threshold, bool(p_value <= alpha), float(p_value), detail)


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


@statistic(
    EMBEDDING_MEAN_DISTANCE,
    "embedding",
    severity="error",
    reads=("embeddings",),
    thresholds={"permutations": PERMUTATIONS},
)
def embedding_mean_distance(
    reference: np.ndarray, current: np.ndarray, thresholds: DriftThresholds
) -> Measurement:
    """Euclidean distance between the mean embeddings, with a permutation p-value.

    Sensitive to any shift of the centre of the embedding cloud (new topics, a changed mix of
    topics or sentiments); cheap enough to use every row, since a block of permutations is
    one matrix product. Tested at alpha/2 (it shares the embedding check's budget with the
    MMD test).
    """
    reference, current = _matrix(reference), _matrix(current)
    skipped = too_small(len(reference), len(current), thresholds.min_samples)
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
        seeded_rng(thresholds, EMBEDDING_MEAN_DISTANCE),
        n_a,
        n_b,
        thresholds.permutations,
        distance,
    )
    return _permutation_result(
        float(distances[0]),
        distances[1:],
        thresholds.alpha / 2,
        {"n_reference": n_a, "n_current": n_b, "dim": int(pooled.shape[1])},
    )


def _subsample(x: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= cap:
        return x
    return x[np.sort(rng.choice(len(x), size=cap, replace=False))]


def _rbf_kernel(pooled: np.ndarray) -> tuple[np.ndarray, float]:
    """RBF kernel matrix (float32) of the rows and its median-heuristic squared bandwidth."""
    sq_norms = np.einsum("ij,ij->i", pooled, pooled)
    sq_dist = np.maximum(sq_norms[:, None] + sq_norms[None, :] - 2.0 * (pooled @ pooled.T), 0.0)
    off_diagonal = sq_dist[np.triu_indices(len(pooled), k=1)]
    # Median heuristic: the bandwidth is the median pairwise distance, so the kernel neither
    # saturates (all ~1) nor vanishes (all ~0) whatever the embedding's scale.
    sigma2 = float(np.median(off_diagonal))
    if sigma2 <= 0.0:
        sigma2 = 1.0
    return np.exp(-sq_dist / (2.0 * sigma2)).astype(np.float32), sigma2


@statistic(
    EMBEDDING_MMD,
    "embedding",
    severity="error",
    reads=("embeddings",),
    thresholds={"permutations": PERMUTATIONS, "max_subsample": MAX_SUBSAMPLE},
)
def embedding_mmd(
    reference: np.ndarray, current: np.ndarray, thresholds: DriftThresholds
) -> Measurement:
    """Maximum mean discrepancy (RBF kernel, median-heuristic bandwidth), permutation p-value.

    Catches changes of shape that leave the mean in place (a topic that splits, a cluster
    that grows while another shrinks), which the mean distance misses. O(n^2): at most
    ``max_subsample`` rows per side. Value = biased MMD^2 (V-statistic) on the subsample.
    Tested at alpha/2 (it shares the embedding check's budget with the mean distance).
    """
    reference, current = _matrix(reference), _matrix(current)
    skipped = too_small(len(reference), len(current), thresholds.min_samples)
    if skipped:
        return skipped
    rng = seeded_rng(thresholds, EMBEDDING_MMD)
    ref = _subsample(reference, thresholds.max_subsample, rng)
    cur = _subsample(current, thresholds.max_subsample, rng)
    kernel, sigma2 = _rbf_kernel(np.vstack([ref, cur]).astype(np.float64))
    n_a, n_b = len(ref), len(cur)
    scale, offset = np.float32(1.0 / n_a + 1.0 / n_b), np.float32(1.0 / n_b)

    def mmd_squared(masks: np.ndarray) -> np.ndarray:
        # MMD^2_b = w' K w with w = +1/n_a on group A and -1/n_b on group B.
        weights = masks * scale - offset
        return np.einsum("ij,ij->i", weights @ kernel, weights, dtype=np.float64)

    mmd2 = _permutation_statistics(rng, n_a, n_b, thresholds.permutations, mmd_squared)
    return _permutation_result(
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
