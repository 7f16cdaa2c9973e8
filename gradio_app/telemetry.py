"""Prometheus metrics of one app instance, served at /metrics.

Each app owns its CollectorRegistry instead of using prometheus_client's global one: two
apps in one process (the tests, the benchmark) would otherwise fight over metric names, and
one app's counters would leak into the other's /metrics.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

from gradio_app.model_holder import LoadFailure, ServedModel
from sentiment_assets.lib.core.months import iso_or_empty

# From a fraction of a millisecond (TF-IDF on one tweet) to a 50,000-row batch.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "sentiment_requests",
            "Requests handled, by endpoint (predict, batch, feedback) and outcome.",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.predictions = Counter(
            "sentiment_predictions",
            "Texts scored, by the model version that scored them and the predicted label.",
            ["model_version", "family", "label"],
            registry=r,
        )
        self.latency = Histogram(
            "sentiment_prediction_latency_seconds",
            "Model time per request (cleaning, embedding and scoring), by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "sentiment_errors",
            "Failed requests, by endpoint and kind (input, no_model, internal).",
            ["endpoint", "kind"],
            registry=r,
        )
        # Every HTTP response, so refusals that never reach a handler (404, 413, 401) and
        # crashes (500) show up too. `path` is a route template, never the raw URL.
        self.responses = Counter(
            "sentiment_http_responses",
            "HTTP responses, by route template ('other' when no route answered) and status.",
            ["path", "status"],
            registry=r,
        )
        self.model = Info(
            "sentiment_model", "The version being served (registry alias champion).", registry=r
        )
        self.model_version = Gauge(
            "sentiment_model_version", "Registry version number being served.", registry=r
        )
        self.model_loaded = Gauge(
            "sentiment_model_loaded_timestamp_seconds",
            "When the served version was swapped in (Unix time).",
            registry=r,
        )
        self.reloads = Counter(
            "sentiment_model_reloads", "Versions loaded and swapped in.", registry=r
        )
        self.reload_failures = Counter(
            "sentiment_model_reload_failures",
            "Failed attempts to read the registry or load a new version.",
            registry=r,
        )
        self.feedback = Counter(
            "sentiment_feedback",
            "Predictions users marked wrong, by the label they gave.",
            ["corrected_label"],
            registry=r,
        )
        ProcessCollector(registry=r)

    def model_swapped(self, served: ServedModel) -> None:
        info = served.info
        self.model.info(
            {
                "version": info.version,
                "family": info.family,
                "trained_through": iso_or_empty(info.trained_through),
            }
        )
        if info.version.isdigit():
            self.model_version.set(int(info.version))
        self.model_loaded.set(served.loaded_at)
        self.reloads.inc()

    def load_failed(self, failure: LoadFailure) -> None:
        self.reload_failures.inc()

    def observe_prediction(
        self, endpoint: str, version: str, family: str, labels: list[str], seconds: float
    ) -> None:
        self.requests.labels(endpoint, "ok").inc()
        self.latency.labels(endpoint).observe(seconds)
        for label in ("negative", "positive"):
            count = labels.count(label)
            if count:
                self.predictions.labels(version, family, label).inc(count)

    def observe_error(self, endpoint: str, kind: str) -> None:
        self.requests.labels(endpoint, "error").inc()
        self.errors.labels(endpoint, kind).inc()

    def observe_response(self, path: str, status: int) -> None:
        self.responses.labels(path, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
