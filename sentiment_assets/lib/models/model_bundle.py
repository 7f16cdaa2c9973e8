"""A trained model on disk: a folder with `card.json` and the weights, never a pickle.

Each family writes and reads its own weights (lib/models/families: skops against an
allowlist of types for the logistic regressions, safetensors for the fine-tuned
transformer). Everything that serves a model (evaluation, the CLI, the app) goes through
`load_predictor`, so text cleaning and embedding are the same as in training.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sentiment_assets.lib.core.months import month_range
from sentiment_assets.lib.data.text import clean_text
from sentiment_assets.lib.encoding.encoder_precision import same_vectors
from sentiment_assets.lib.models.families import family
from sentiment_assets.lib.stats.calibration import Calibration
from sentiment_assets.lib.stats.prior_shift import PriorAdjustment

if TYPE_CHECKING:
    from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime

CARD_FILE = "card.json"

# Card fields measured on the trained model rather than defining it.
DERIVED_CARD_FIELDS = ("metrics", "calibration")


@dataclass
class ModelCard:
    family: str
    # First of the month: the last month the model learned from, and the first.
    trained_through: date
    window_start: date
    params: dict
    data_fingerprint: str
    encoder: str | None = None
    encoder_fingerprint: str | None = None
    metrics: dict = field(default_factory=dict)
    # lib/calibration.Calibration.as_dict(), fitted on the holdout after training; empty on
    # cards written before calibration existed (identity).
    calibration: dict = field(default_factory=dict)
    # lib/prior_shift.PriorAdjustment.as_dict() on a prior-adjusted child of a trained
    # version (same weights, scores moved to a month's re-estimated prior); empty otherwise.
    prior_adjustment: dict = field(default_factory=dict)
    # code_fingerprint() of the code that trained it; empty on cards written before.
    code: str = ""

    @property
    def version(self) -> str:
        """Content-derived id: the same data, parameters and code give the same version.
        Metrics and calibration are measured on the trained model, so they are not part of
        it; a prior adjustment changes the predictions, so it is. Cards without a prior
        adjustment or a code fingerprint keep the ids they had before those fields existed."""
        fields = {k: v for k, v in self.as_dict().items() if k not in DERIVED_CARD_FIELDS}
        for optional in ("prior_adjustment", "code"):
            if not fields[optional]:
                del fields[optional]
        identity = json.dumps(fields, sort_keys=True)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
        return f"{self.family}-{self.trained_through:%Y-%m}-{digest}"

    def window(self) -> list[date]:
        """The months the model learned from (its holdout rows excepted), oldest first: the
        reference for drift and the rows on which a challenger meets the champion."""
        return month_range(self.window_start, self.trained_through)

    def as_dict(self) -> dict:
        """The card as card.json holds it: months as ISO strings. The version hashes this
        too, so the ids stay the ones computed when the card itself held strings."""
        fields = asdict(self)
        for name in _MONTH_FIELDS:
            fields[name] = fields[name].isoformat()
        return fields

    @classmethod
    def from_dict(cls, fields: dict) -> ModelCard:
        """The inverse of as_dict (card.json's contents)."""
        months = {name: date.fromisoformat(fields[name]) for name in _MONTH_FIELDS}
        return cls(**{**fields, **months})


# The card's fields that hold a month (a date), written as ISO strings.
_MONTH_FIELDS = ("trained_through", "window_start")


# The code a model's weights and scores come from: the families, fitting and the encoders.
# A change there is a new model even on the same data and parameters.
MODEL_CODE = ("models", "encoding")


@cache
def code_fingerprint() -> str:
    """A digest of the model code (MODEL_CODE under lib/), as installed."""
    lib = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for room in MODEL_CODE:
        for path in sorted((lib / room).rglob("*.py")):
            digest.update(path.relative_to(lib).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def data_fingerprint(tweet_ids: list[str], labels: np.ndarray) -> str:
    digest = hashlib.sha256()
    for tweet_id, label in zip(tweet_ids, labels.tolist(), strict=True):
        digest.update(f"{tweet_id}:{label}\n".encode())
    return digest.hexdigest()[:16]


def save_bundle(directory: Path, card: ModelCard, estimator: object) -> Path:
    """Write the bundle to a sibling temp folder and swap it in, so readers never see half."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    # mkdtemp makes the folder private (0700); a bundle is shared with the app, which may
    # run as another user, so it gets a folder's usual mode once it is renamed into place.
    os.chmod(staging, 0o755)
    family(card.family).save(estimator, staging)
    write_card(staging, card)
    if directory.exists():
        retired = directory.with_name(f".{directory.name}-retired-{os.getpid()}")
        os.replace(directory, retired)
        os.replace(staging, directory)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, directory)
    return directory


def write_card(directory: Path, card: ModelCard) -> None:
    """(Re)write a bundle's card; training rewrites it once the holdout calibration is known,
    before the bundle is registered."""
    (directory / CARD_FILE).write_text(json.dumps(card.as_dict(), indent=2, sort_keys=True))


def read_card(directory: Path) -> ModelCard:
    path = directory / CARD_FILE
    if not path.exists():
        raise FileNotFoundError(f"no model bundle at {directory} (missing {CARD_FILE})")
    return ModelCard.from_dict(json.loads(path.read_text()))


class Predictor:
    """Scores raw or already-cleaned texts with one bundle's model."""

    def __init__(
        self,
        directory: Path,
        device: str | None = None,
        encoder: object = None,
        runtime: ServingRuntime | None = None,
    ) -> None:
        self.directory = directory
        self.card = read_card(directory)
        self._family = family(self.card.family)
        self._device = device
        # None: the runtime and precision the card's encoder fingerprint names, exactly as in
        # training (evaluation uses this); serving passes one.
        self._runtime = runtime
        # A caller that already holds the encoder (a Dagster step, the app) passes it in, so
        # the transformer is not loaded a second time; one giving other vectors (another
        # model, or another precision) is never used.
        same = same_vectors(getattr(encoder, "fingerprint", None), self.card.encoder_fingerprint)
        self._encoder = encoder if same else None
        # Where an encoder loaded here keeps its ONNX graphs: the caller's encoder's folder.
        self._onnx_cache_dir = getattr(encoder, "cache_dir", None)
        if self._encoder is None and runtime is not None and self._family.needs_vectors:
            # Serving loads everything up front: the first request must not pay for it.
            self._encoder = self._load_encoder()
        self._model = self._family.load(directory, device, runtime)

    @property
    def version(self) -> str:
        return self.card.version

    @property
    def runtime(self) -> str:
        """What computes the scores: "scikit-learn", or the encoder's "torch"/"onnxruntime"."""
        return self._family.runtime(self._model, self._encoder)

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = self._load_encoder()
        return self._encoder.encode(texts)

    def _load_encoder(self) -> object:
        from sentiment_assets.lib.encoding.encoder_choice import card_runtime

        fingerprint = self.card.encoder_fingerprint
        runtime = self._runtime or card_runtime(fingerprint, self._onnx_cache_dir)
        encoder = runtime.encoder(self.card.encoder, self._device, fingerprint)
        if not same_vectors(encoder.fingerprint, fingerprint):
            # Embeddings from another encoder would be silently wrong: refuse.
            raise RuntimeError(
                f"version {self.card.version} was trained on encoder "
                f"'{self.card.encoder_fingerprint}', but '{self.card.encoder}' here is "
                f"'{encoder.fingerprint}'"
            )
        return encoder

    def predict_proba_clean(
        self, cleaned_texts: list[str], embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """P(positive) for texts already cleaned like tweets_clean.text."""
        if not cleaned_texts:
            return np.zeros(0, dtype=np.float64)
        vectors = None
        if self._family.needs_vectors:
            vectors = embeddings if embeddings is not None else self._embed(cleaned_texts)
        raw = self._family.predict_proba(self._model, cleaned_texts, vectors)
        if self.card.prior_adjustment:
            return PriorAdjustment.from_dict(self.card.prior_adjustment).apply(raw)
        return raw

    def predict_proba(self, raw_texts: list[str]) -> np.ndarray:
        return self.predict_proba_clean([clean_text(t) for t in raw_texts])

    @property
    def calibration(self) -> Calibration:
        return Calibration.from_dict(self.card.calibration)

    def calibrated_proba_clean(
        self, cleaned_texts: list[str], embeddings: np.ndarray | None = None
    ) -> np.ndarray:
        """Calibrated P(positive): the same 0.5 decisions as predict_proba_clean (temperature
        scaling moves no score across 0.5), with confidences that match observed rates."""
        return self.calibration.apply(self.predict_proba_clean(cleaned_texts, embeddings))


def load_predictor(
    directory: Path,
    device: str | None = None,
    encoder: object = None,
    runtime: ServingRuntime | None = None,
) -> Predictor:
    return Predictor(directory, device=device, encoder=encoder, runtime=runtime)
