"""Drift statistics on synthetic samples with a known answer: shifted -> True, same -> False."""

import json
import math

import numpy as np
import pytest

from sentiment_assets.lib.stats import drift
from sentiment_assets.lib.stats.drift import (
    DriftSample,
    DriftThresholds,
    StatResult,
    combine,
    drift_report,
    embedding,
)

N = 600
DIM = 32
TH = DriftThresholds()


def unit_vectors(rng: np.random.Generator, n: int, shift: float = 0.0, scale: float = 1.0):
    x = rng.normal(scale=scale, size=(n, DIM))
    x[:, 0] += shift
    return x.astype(np.float32)


def scores_for(rng: np.random.Generator, labels: np.ndarray, accuracy: float) -> np.ndarray:
    """P(positive) that is right (on the 0.5 side of the label) with probability `accuracy`."""
    right = rng.random(len(labels)) < accuracy
    confident = rng.uniform(0.55, 0.99, len(labels))
    says_positive = np.where(right, labels == 1, labels == 0)
    return np.where(says_positive, confident, 1 - confident)


BASE_WORDS = [f"word{i}" for i in range(120)]


def texts(rng: np.random.Generator, n: int, extra: list[str] | None = None, share: float = 0.0):
    out = []
    for _ in range(n):
        words = list(rng.choice(BASE_WORDS, 6))
        if extra and rng.random() < share:
            words += list(rng.choice(extra, 3))
        out.append(" ".join(words))
    return out


def sample(seed: int, n: int = N, **kw) -> DriftSample:
    rng = np.random.default_rng(seed)
    labels = rng.binomial(1, kw.get("positive_rate", 0.5), n)
    return DriftSample(
        embeddings=unit_vectors(rng, n, kw.get("shift", 0.0), kw.get("scale", 1.0)),
        scores=scores_for(rng, labels, kw.get("accuracy", 0.85)),
        texts=texts(rng, n, kw.get("new_words"), kw.get("new_share", 0.0)),
        labels=labels,
    )


def by_name(results: list[StatResult]) -> dict[str, StatResult]:
    return {r.statistic: r for r in results}


# --- embedding --------------------------------------------------------------------------------


def test_embedding_mean_distance_flags_a_mean_shift_only():
    rng = np.random.default_rng(1)
    ref = unit_vectors(rng, N)
    same = drift.embedding_mean_distance(ref, unit_vectors(rng, N), TH)
    shifted = drift.embedding_mean_distance(ref, unit_vectors(rng, N, shift=0.6), TH)
    assert same.drifted is False and same.p_value > 0.01
    assert shifted.drifted is True and shifted.p_value < 0.005
    assert shifted.value > shifted.threshold > same.value * 0.5
    assert shifted.kind == "embedding" and shifted.severity == "error"


def test_embedding_mmd_sees_a_change_of_spread_that_the_mean_misses():
    rng = np.random.default_rng(2)
    ref = unit_vectors(rng, N)
    wider = unit_vectors(rng, N, scale=1.3)  # same centre, wider cloud
    assert drift.embedding_mean_distance(ref, wider, TH).drifted is False
    assert drift.embedding_mmd(ref, wider, TH).drifted is True
    assert drift.embedding_mmd(ref, unit_vectors(rng, N), TH).drifted is False


def test_mmd_subsamples_large_windows():
    rng = np.random.default_rng(3)
    th = DriftThresholds(max_subsample=300)
    result = drift.embedding_mmd(unit_vectors(rng, 700), unit_vectors(rng, 500), th)
    assert result.detail["n_subsample_reference"] == 300
    assert result.detail["n_subsample_current"] == 300
    assert result.detail["n_reference"] == 700


def test_permutation_verdict_matches_value_against_threshold():
    # Small shifts around the detection limit: the table must never contradict itself.
    for shift in (0.0, 0.1, 0.15, 0.2, 0.3):
        rng = np.random.default_rng(4)
        result = drift.embedding_mean_distance(
            unit_vectors(rng, 300), unit_vectors(rng, 300, shift=shift), TH
        )
        assert result.drifted == (result.value > result.threshold)
        assert result.drifted == (result.p_value <= result.detail["alpha"])


# --- prediction -------------------------------------------------------------------------------


def test_prediction_ks_and_psi_flag_a_score_shift():
    rng = np.random.default_rng(5)
    ref = rng.beta(2, 2, N)
    same, shifted = rng.beta(2, 2, N), rng.beta(3, 2, N)
    for check in (drift.prediction_ks, drift.prediction_psi):
        assert check(ref, same, TH).drifted is False
        result = check(ref, shifted, TH)
        assert result.drifted is True
        assert result.value > result.threshold
    psi = drift.prediction_psi(ref, shifted, TH)
    assert psi.severity == "warn" and psi.detail["bins"] == 10


def test_predicted_positive_rate_flags_a_rate_change():
    rng = np.random.default_rng(6)
    ref = rng.random(N)  # 50% above 0.5
    same = rng.random(N)
    more_positive = np.clip(rng.random(N) + 0.15, 0, 1)  # 65% above 0.5
    assert drift.predicted_positive_rate(ref, same, TH).drifted is False
    result = drift.predicted_positive_rate(ref, more_positive, TH)
    assert result.drifted is True
    assert result.detail["rate_current"] == pytest.approx(0.65, abs=0.05)


def test_nan_scores_are_ignored_not_counted():
    rng = np.random.default_rng(7)
    ref = rng.beta(2, 2, N)
    ref[: N // 2] = np.nan  # in-sample rows of the champion: no score
    result = drift.prediction_ks(ref, rng.beta(2, 2, N), TH)
    assert result.detail["n_reference"] == N - N // 2
    assert result.drifted is False


# --- labels -----------------------------------------------------------------------------------


def test_label_prior_flags_a_prior_shift_and_reports_both_shares():
    rng = np.random.default_rng(8)
    ref = rng.binomial(1, 0.5, N)
    assert drift.label_prior(ref, rng.binomial(1, 0.5, N), TH).drifted is False
    result = drift.label_prior(ref, rng.binomial(1, 0.3, N), TH)
    assert result.drifted is True
    assert result.detail["positive_share_current"] < result.detail["positive_share_reference"]


def test_label_checks_need_labels_on_both_sides():
    labels = np.ones(N)
    scores = np.full(N, 0.9)
    for result in (
        drift.label_prior(None, labels, TH),
        drift.performance_drop(scores, labels, scores, None, TH),
    ):
        assert result.drifted is None
        assert result.detail["reason"] == drift.NO_LABELS


def test_unlabelled_rows_do_not_count():
    rng = np.random.default_rng(9)
    cur = rng.binomial(1, 0.5, N).astype(float)
    cur[:450] = np.nan  # only 150 labelled rows left: below min_samples
    result = drift.label_prior(rng.binomial(1, 0.5, N), cur, TH)
    assert result.drifted is None and result.detail["reason"] == drift.NOT_ENOUGH_DATA


def test_performance_drop_flags_only_drops_beyond_the_tolerance():
    rng = np.random.default_rng(10)
    labels_ref, labels_cur = rng.binomial(1, 0.5, 2000), rng.binomial(1, 0.5, 2000)
    ref_scores = scores_for(rng, labels_ref, 0.85)
    big_drop = drift.performance_drop(
        ref_scores, labels_ref, scores_for(rng, labels_cur, 0.70), labels_cur, TH
    )
    assert big_drop.drifted is True
    assert big_drop.value == pytest.approx(0.15, abs=0.04)
    small_drop = drift.performance_drop(
        ref_scores, labels_ref, scores_for(rng, labels_cur, 0.84), labels_cur, TH
    )
    assert small_drop.drifted is False
    better = drift.performance_drop(
        ref_scores, labels_ref, scores_for(rng, labels_cur, 0.95), labels_cur, TH
    )
    assert better.drifted is False and better.value < 0


# --- vocabulary -------------------------------------------------------------------------------


def test_tokenize_lowercases_and_drops_short_and_stop_words():
    assert drift.tokenize("I LOVE the new #Crypto-wallet!! a b http @user") == [
        "love",
        "new",
        "crypto",
        "wallet",
    ]


def test_vocabulary_drift_flags_new_words_and_lists_them():
    rng = np.random.default_rng(11)
    ref = texts(rng, N)
    new_words = ["bitcoin", "hodl", "rugged", "mooning"]
    assert drift.vocabulary_drift(ref, texts(rng, N), TH).drifted is False
    result = drift.vocabulary_drift(ref, texts(rng, N, new_words, share=0.3), TH)
    assert result.drifted is True
    assert result.value > result.detail["oov_rate_reference_heldout"]
    listed = [k["token"] for k in result.detail["new_keywords"]]
    assert set(listed[:4]) == set(new_words)
    assert result.severity == "warn"


def test_vocabulary_threshold_is_calibrated_on_a_noisy_reference():
    # Half the reference's words are one-off tokens (names, typos): a high OOV rate that an
    # undrifted month shares, so it must not be flagged.
    rng = np.random.default_rng(12)

    def noisy(n: int, offset: int) -> list[str]:
        return [
            " ".join([*rng.choice(BASE_WORDS, 4), f"rare{offset + i}a", f"rare{offset + i}b"])
            for i in range(n)
        ]

    result = drift.vocabulary_drift(noisy(N, 0), noisy(N, 10_000), TH)
    assert result.detail["oov_rate_reference_heldout"] > 0.2
    assert result.drifted is False


# --- not enough data, combined, report --------------------------------------------------------


def test_small_windows_say_not_enough_data():
    small = sample(13, n=150)
    big = sample(14)
    for result in drift_report(big, small):
        assert result.drifted is None, result.statistic
        assert math.isnan(result.value)
    assert drift_report(big, small)[-1].detail["reason"] == drift.NOT_ENOUGH_DATA


def _stat(name: str, drifted: bool | None, severity: str = "error", p: float = 0.5) -> StatResult:
    detail = {"alpha": 0.01} if drifted is not None else {"reason": "not enough data"}
    return StatResult(name, 0.0, 1.0, drifted, p, detail, "prediction", severity)


def test_combined_is_driven_by_error_checks_only():
    warn_only = combine([_stat("a", False), _stat("w", True, "warn", 1e-9)])
    assert warn_only.drifted is False
    assert warn_only.detail["warnings"] == ["w"]
    one_error = combine([_stat("a", False), _stat("b", True, p=0.001), _stat("c", None)])
    assert one_error.drifted is True
    assert one_error.value == 1.0
    assert one_error.detail["drifted_statistics"] == ["b"]
    assert one_error.detail["skipped"] == {"c": "not enough data"}
    # Bonferroni: two applicable checks at 0.01 each, p = 0.001 -> 0.001 x 0.02 / 0.01.
    assert one_error.p_value == pytest.approx(0.002)
    nothing = combine([_stat("a", None), _stat("w", True, "warn")])
    assert nothing.drifted is None


def test_report_on_undrifted_data_is_clean_and_on_drifted_data_flags_each_kind():
    ref = sample(15)
    clean = by_name(drift_report(ref, sample(16)))
    assert list(clean) == list(drift.report_names())
    assert [name for name, r in clean.items() if r.drifted] == []
    assert clean[drift.COMBINED].drifted is False

    shifted = by_name(
        drift_report(
            ref,
            sample(
                17,
                shift=0.6,
                positive_rate=0.2,
                accuracy=0.65,
                new_words=["rekt", "goated"],
                new_share=0.3,
            ),
        )
    )
    assert all(r.drifted for r in shifted.values()), {
        k: r.drifted for k, r in shifted.items() if not r.drifted
    }
    assert shifted[drift.COMBINED].value == 6.0
    # Every detail must survive a JSON round trip (it goes to Dagster metadata and DuckDB).
    json.dumps([r.as_dict() for r in shifted.values()], allow_nan=True)


def test_same_seed_same_report_other_seed_other_permutations():
    ref, cur = sample(18), sample(19, shift=0.05)
    first = drift_report(ref, cur, DriftThresholds(seed=3))
    again = drift_report(ref, cur, DriftThresholds(seed=3))
    assert [r.as_dict() for r in first] == [r.as_dict() for r in again]
    other = drift_report(ref, cur, DriftThresholds(seed=4))
    assert (
        by_name(other)[drift.EMBEDDING_MMD].p_value != by_name(first)[drift.EMBEDDING_MMD].p_value
    )


def test_thresholds_are_validated():
    with pytest.raises(ValueError, match="alpha"):
        DriftThresholds(alpha=0.0)
    with pytest.raises(ValueError, match="permutations"):
        DriftThresholds(permutations=50)
    with pytest.raises(ValueError, match="one row per tweet"):
        DriftSample(np.zeros((3, 2)), np.zeros(2), ["a", "b", "c"])


def test_full_size_report_1500_vs_1500_d384_is_fast_enough():
    import time

    rng = np.random.default_rng(20)

    def big(shift: float) -> DriftSample:
        x = rng.normal(size=(1500, 384)).astype(np.float32)
        x[:, 0] += shift
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        labels = rng.binomial(1, 0.5, 1500)
        return DriftSample(x, scores_for(rng, labels, 0.8), texts(rng, 1500), labels)

    ref, cur = big(0.0), big(0.0)
    # CPU seconds, not wall: on a shared machine the wall clock measures the neighbours. CPU
    # time counts every thread, so under 5 CPU-seconds is under 5 s of wall on idle cores.
    started = time.process_time()
    drift_report(ref, cur)
    assert time.process_time() - started < 5.0


def test_permutations_in_blocks_give_the_same_verdicts(monkeypatch: pytest.MonkeyPatch):
    rng = np.random.default_rng(21)
    ref, same, shifted = unit_vectors(rng, 300), unit_vectors(rng, 300), unit_vectors(rng, 300, 0.6)
    whole = [drift.embedding_mean_distance(ref, x, TH) for x in (same, shifted)]
    monkeypatch.setattr(embedding, "_MASK_CELLS", 600 * 7)  # blocks of 7 permutations
    blocked = [drift.embedding_mean_distance(ref, x, TH) for x in (same, shifted)]
    assert [r.drifted for r in blocked] == [r.drifted for r in whole] == [False, True]
    # The observed statistic does not depend on how the permutations were batched.
    assert blocked[1].value == pytest.approx(whole[1].value, rel=1e-5)
    assert blocked[1].detail["permutations"] == TH.permutations
