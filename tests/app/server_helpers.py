"""Starting the real app on a free port, and reading its /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gradio_app.config import AppConfig
from gradio_app.model_holder import ModelHolder
from gradio_app.server import BackgroundServer, SentimentApp, create_app
from sentiment_assets.lib.settings import Settings


@dataclass
class Running:
    app: SentimentApp
    server: BackgroundServer

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def running_app(
    settings: Settings,
    config: AppConfig,
    holder: ModelHolder | None = None,
    wait_for_model: bool = True,
) -> Iterator[Running]:
    # torch's thread count is process-wide: leave it alone for the tests that run after us.
    # Most tests start with a request, so by default the champion is loaded before serving;
    # wait_for_model=False starts the way `python -m gradio_app` does (loading meanwhile).
    app = create_app(
        settings, replace(config, threads=None), holder=holder, wait_for_model=wait_for_model
    )
    server = BackgroundServer(app.asgi).start()
    try:
        yield Running(app, server)
    finally:
        server.stop()
        app.close()


def metric_samples(url: str, **kwargs: object) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from the app's /metrics."""
    response = httpx.get(f"{url}/metrics", timeout=10, **kwargs)
    response.raise_for_status()
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def metric(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
