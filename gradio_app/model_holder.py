"""The champion the app serves, swapped in whole when the registry alias moves.

Requests read one reference (`ModelHolder._served`) and keep the object they got for the
whole request, so a batch is scored by a single version even if the alias moves meanwhile.
A new version is downloaded, loaded and run once on a warm-up text in the background; only
then is the reference replaced, in a single assignment. Until that moment the old model keeps
answering, so there is no window in which a half-loaded model could answer, and a version
that fails to load never replaces a working one.

`start(wait=False)` returns at once and leaves even the first load to the poller thread, so a
server can answer its pages while a slow model loads: until the swap, `current()` raises
ModelLoadingError naming the version being loaded.

Pure Python (no gradio): the Gradio UI, the benchmark and the tests all drive this class.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import numpy as np

from sentiment_assets.lib.data.batch_io import LABEL_NAMES
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.versions import registry
from sentiment_assets.lib.versions.serving import load_champion, serving_runtime

log = logging.getLogger(__name__)

WARM_UP_TEXT = "warming up: is this model loaded? yes, it works great"


class Scorer(Protocol):
    """What the holder needs from a model: P(positive) for raw texts."""

    def predict_proba(self, raw_texts: list[str]) -> np.ndarray: ...


class NoModelError(RuntimeError):
    """No version could be served yet (no champion, or the first load failed)."""


class ModelLoadingError(NoModelError):
    """Nothing is served yet, but the champion is being loaded: ask again in a few seconds.

    A NoModelError, so callers that only know "no model" still answer 503 and count it.
    """


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    scores: list[float]
    version: str
    family: str
    trained_through: date | None
    latency_ms: float


@dataclass(frozen=True)
class ServedModel:
    """One fully loaded version. Immutable apart from its lock, so it can be shared freely."""

    info: registry.VersionInfo
    scorer: Scorer
    loaded_at: float
    load_seconds: float
    # Fast tokenizers are not safe to call from two threads at once ("Already borrowed"),
    # and one call already uses every core (torch's threads, or the ONNX encoder's batch
    # workers), so calls into one model take turns.
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def predict(self, texts: Sequence[str]) -> Prediction:
        texts = list(texts)
        started = time.perf_counter()
        with self.lock:
            scores = np.asarray(self.scorer.predict_proba(texts), dtype=float)
        latency_ms = 1000 * (time.perf_counter() - started)
        if scores.shape != (len(texts),):
            raise RuntimeError(
                f"version {self.info.version} returned {scores.shape} scores for {len(texts)} texts"
            )
        return Prediction(
            labels=LABEL_NAMES[(scores >= 0.5).astype(int)].tolist(),
            scores=scores.tolist(),
            version=self.info.version,
            family=self.info.family,
            trained_through=self.info.trained_through,
            latency_ms=latency_ms,
        )


@dataclass(frozen=True)
class LoadFailure:
    version: str | None
    message: str
    at: float


@dataclass(frozen=True)
class HolderStatus:
    served: registry.VersionInfo | None
    loaded_at: float | None
    load_seconds: float | None
    champion: registry.VersionInfo | None
    last_check_at: float | None
    failure: LoadFailure | None
    reloads: int
    # What computes the served model's scores ("onnxruntime", "torch", "scikit-learn").
    runtime: str | None = None
    # The version being loaded right now (the first one, or the next champion), if any.
    loading: registry.VersionInfo | None = None
    # Started in the background and the first registry check has not finished: the champion
    # is not even known yet. Together with `loading`, "the model is on its way".
    starting: bool = False

    @property
    def pending(self) -> bool:
        """Nothing is served yet, but a model is on its way (looked up or being loaded)."""
        return self.served is None and (self.loading is not None or self.starting)


Lookup = Callable[[], "registry.VersionInfo | None"]
Loader = Callable[[registry.VersionInfo], Scorer]


class ModelHolder:
    """Serves the registry champion; `refresh()` (or the poller) follows the alias."""

    def __init__(
        self,
        lookup: Lookup,
        loader: Loader,
        reload_seconds: float = 5.0,
        retry_failed_seconds: float = 60.0,
        on_swap: Callable[[ServedModel], None] | None = None,
        on_failure: Callable[[LoadFailure], None] | None = None,
    ) -> None:
        if reload_seconds <= 0:
            raise ValueError("reload_seconds must be positive")
        self._lookup = lookup
        self._loader = loader
        self.reload_seconds = reload_seconds
        self.retry_failed_seconds = retry_failed_seconds
        self._on_swap = on_swap
        self._on_failure = on_failure
        self._served: ServedModel | None = None
        self._champion: registry.VersionInfo | None = None
        self._failure: LoadFailure | None = None
        self._last_check: float | None = None
        self._reloads = 0
        self._loading: registry.VersionInfo | None = None
        self._starting = False
        # One refresh at a time: the poller and a "check now" button must not load twice.
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ serving
    def current(self) -> ServedModel:
        """The model to use for one whole request (a batch included)."""
        # `_loading` is read before `_served` and cleared only after the swap, so a request
        # racing the end of a load sees either the new model or "loading", never "no model".
        loading, starting = self._loading, self._starting
        served = self._served
        if served is None:
            if loading is not None:
                raise ModelLoadingError(
                    f"model v{loading.version} is loading; try again in a few seconds"
                )
            if starting:
                raise ModelLoadingError(
                    "the model is loading (looking up the champion in the registry); "
                    "try again in a few seconds"
                )
            failure = self._failure
            detail = f": {failure.message}" if failure else ""
            raise NoModelError(f"no model is being served yet{detail}")
        return served

    def predict(self, texts: Sequence[str]) -> Prediction:
        return self.current().predict(texts)

    def status(self) -> HolderStatus:
        loading, starting = self._loading, self._starting  # before `_served`, as in current()
        served = self._served
        return HolderStatus(
            served=served.info if served else None,
            loaded_at=served.loaded_at if served else None,
            load_seconds=served.load_seconds if served else None,
            champion=self._champion,
            last_check_at=self._last_check,
            failure=self._failure,
            reloads=self._reloads,
            runtime=getattr(served.scorer, "runtime", None) if served else None,
            loading=loading,
            starting=starting,
        )

    # ---------------------------------------------------------------- reloading
    def refresh(self, force: bool = False, blocking: bool = True) -> bool:
        """Look at the alias now; load and swap in a new champion. True if a swap happened.

        `force` retries a version that failed to load without waiting for the back-off.
        `blocking=False` returns False at once if another refresh (a slow load) is under way,
        so a "check now" button does not hang for the length of someone else's load.
        """
        if not self._refresh_lock.acquire(blocking=blocking):
            return False
        try:
            return self._refresh(force)
        finally:
            self._refresh_lock.release()

    def _refresh(self, force: bool) -> bool:
        self._last_check = time.time()
        try:
            champion = self._lookup()
        except Exception as error:  # the registry being unreachable must not stop serving
            self._fail(None, f"cannot read the registry: {error}")
            return False
        self._champion = champion
        served = self._served
        if champion is None:
            # Without an alias there is nothing better to serve: keep what we have.
            self._failure = LoadFailure(
                None,
                f"no version has the alias '{registry.CHAMPION_ALIAS}'"
                + ("" if served else " yet: build the pipeline first (make pipeline)"),
                time.time(),
            )
            return False
        if served is not None and served.info.version == champion.version:
            # Up to date: an earlier failure (registry down, a version since replaced) is over.
            self._failure = None
            return False
        failure = self._failure
        if (
            not force
            and failure is not None
            and failure.version == champion.version
            and time.time() - failure.at < self.retry_failed_seconds
        ):
            return False
        log.info(
            "loading version %s (%s, trained through %s)",
            champion.version,
            champion.family,
            champion.trained_through,
        )
        started = time.perf_counter()
        self._loading = champion
        try:
            scorer = self._loader(champion)
            warm = np.asarray(scorer.predict_proba([WARM_UP_TEXT]), dtype=float)
            if warm.shape != (1,) or not (0.0 <= warm[0] <= 1.0) or math.isnan(warm[0]):
                raise RuntimeError(f"the warm-up prediction was {warm!r}, not one probability")
        except Exception as error:
            try:
                self._fail(champion.version, f"version {champion.version} failed to load: {error}")
            finally:
                self._loading = None  # after the failure is recorded: see current()
            return False
        new = ServedModel(champion, scorer, time.time(), time.perf_counter() - started)
        self._served = new  # the swap: one reference, replaced whole
        self._loading = None  # only after the swap: see current()
        self._failure = None
        self._reloads += 1
        log.info(
            "serving version %s (%s, trained through %s), loaded in %.2f s",
            champion.version,
            champion.family,
            champion.trained_through,
            new.load_seconds,
        )
        if self._on_swap is not None:
            self._on_swap(new)
        return True

    def _fail(self, version: str | None, message: str) -> None:
        failure = LoadFailure(version, message, time.time())
        self._failure = failure
        log.warning(
            "%s (still serving %s)",
            message,
            self._served.info.version if self._served else "nothing",
        )
        if self._on_failure is not None:
            self._on_failure(failure)

    def start(self, wait: bool = True) -> None:
        """Follow the alias in a background thread.

        `wait=True` loads the current champion in this thread first, so the first request
        finds it ready. `wait=False` returns at once and the poller loads it: a server can
        answer (with "loading") during a load that takes tens of seconds on a busy machine.
        """
        if self._thread is not None:
            return
        self._stop.clear()
        if wait:
            self.refresh()
        else:
            self._starting = True  # until the first check is over; see status().pending
        self._thread = threading.Thread(
            target=self._poll, args=(not wait,), name="champion-poller", daemon=True
        )
        self._thread.start()

    def _poll(self, check_first: bool) -> None:
        if check_first:
            try:
                self._tick()
            finally:
                self._starting = False
        while not self._stop.wait(self.reload_seconds):
            self._tick()

    def _tick(self) -> None:
        try:
            self.refresh()
        except Exception:  # never let the poller die: the next tick tries again
            log.exception("champion refresh failed")

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)


def registry_holder(
    settings: Settings,
    reload_seconds: float = 5.0,
    retry_failed_seconds: float = 60.0,
    on_swap: Callable[[ServedModel], None] | None = None,
    on_failure: Callable[[LoadFailure], None] | None = None,
    encoder_runtime: str = "auto",
    threads: int | None = None,
    batch_workers: int = 1,
) -> ModelHolder:
    """A holder that follows `tweet-sentiment@champion` in the settings' MLflow registry.

    `encoder_runtime` and `threads` choose how the transformer families run (see
    `onnx_encoder.use_onnx`; `threads` also sets torch's, before each load); exported ONNX graphs are cached under the settings' home, and
    consecutive champions share one sentence encoder. `batch_workers` is how many batches of
    one request the ONNX sentence encoder or fine-tuned classifier runs side by side
    (`ServingRuntime`).
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.mlflow_tracking_uri)
    runtime = serving_runtime(
        settings,
        encoder_runtime,
        threads,
        on_fallback=lambda why: log.warning("serving on torch: %s", why),
        batch_workers=batch_workers,
    )

    def lookup() -> registry.VersionInfo | None:
        return registry.champion(client)

    def loader(info: registry.VersionInfo) -> Scorer:
        if threads is not None:
            # Here rather than before the server starts: importing torch takes seconds on a
            # busy machine, and it is only needed once a model loads (skops imports it anyway).
            import torch

            torch.set_num_threads(threads)
        return load_champion(settings, runtime, info).predictor

    return ModelHolder(
        lookup,
        loader,
        reload_seconds=reload_seconds,
        retry_failed_seconds=retry_failed_seconds,
        on_swap=on_swap,
        on_failure=on_failure,
    )
