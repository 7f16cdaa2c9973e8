"""evaluate_month: the estimate reads every tweet, realised scores and slices only labelled ones."""

import dataclasses
from datetime import date

import numpy as np
import pandas as pd
import pytest

from sentiment_assets.lib.models.model_bundle import ModelCard, load_predictor, save_bundle
from sentiment_assets.lib.models.params import LogRegParams
from sentiment_assets.lib.models.training import fit_tfidf_logreg
from sentiment_assets.lib.stats.calibration import TEMPERATURE_SCALING, Calibration
from sentiment_assets.lib.stats.metrics import classification_metrics
from sentiment_assets.lib.stats.performance_estimation import estimate_performance
from sentiment_assets.lib.stats.slices import slice_masks
from sentiment_assets.lib.versions.evaluation import evaluate_month

POSITIVE = ["love this so much", "great day @user", "not bad at all, love it :)", "GREAT NEWS"]
NEGATIVE = ["hate this so much", "awful day @user", "not good, hate it", "WORST DAY EVER"]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    texts = (POSITIVE + NEGATIVE) * 5
    labels = np.array(([1] * 4 + [0] * 4) * 5)
    fit = fit_tfidf_logreg(texts, labels, np.zeros(len(texts), bool), LogRegParams(min_df=1))
    card = ModelCard(
        "tfidf_logreg",
        date(2024, 1, 1),
        date(2024, 1, 1),
        {},
        "fingerprint",
        calibration=Calibration(TEMPERATURE_SCALING, 0.5, 40).as_dict(),
    )
    return load_predictor(save_bundle(tmp_path_factory.mktemp("m") / "bundle", card, fit.estimator))


def month(labels: list[float | None]) -> pd.DataFrame:
    texts = (POSITIVE + NEGATIVE) * 2
    return pd.DataFrame({"text": texts[: len(labels)], "label": labels}).astype({"label": float})


def test_the_estimate_uses_every_tweet_and_the_realised_scores_the_labelled_ones(predictor):
    labels = [1, 1, None, 1, 0, None, 0, 0, None, None, 1, 0, 0, None, 0, 1]
    frame = month(labels)
    result = evaluate_month(predictor, frame, None)
    raw = predictor.predict_proba_clean(frame["text"].tolist())
    assert result.estimate == estimate_performance(predictor.calibration.apply(raw))
    assert result.estimate.n == len(frame)
    labelled = frame["label"].notna().to_numpy()
    expected = classification_metrics(frame["label"][labelled].astype(int), raw[labelled])
    assert result.realised == expected
    kept = [t for t, keep in zip(frame["text"], labelled, strict=True) if keep]
    counts = {k: int(v.sum()) for k, v in slice_masks(kept).items() if v.any()}
    assert {s.slice: s.n for s in result.slices} == counts


def test_an_unlabelled_month_gets_an_estimate_only(predictor):
    result = evaluate_month(predictor, month([None] * 8), None)
    assert result.estimate.n == 8
    assert result.realised is None and result.slices == []


def test_the_estimate_follows_the_versions_calibration(predictor):
    frame = month([None] * 16)
    sharp = evaluate_month(predictor, frame, None).estimate
    plain = dataclasses.replace(predictor.card, calibration={})
    predictor_without = load_predictor(predictor.directory)
    predictor_without.card = plain
    assert evaluate_month(predictor_without, frame, None).estimate.accuracy < sharp.accuracy
