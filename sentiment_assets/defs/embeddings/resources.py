"""The sentence encoder resource: one loaded encoder per process, the graph serving runs."""

from __future__ import annotations

import functools

import dagster as dg

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.encoding.encoder import TextEncoder
from sentiment_assets.lib.encoding.encoder_choice import pipeline_encoder


@functools.lru_cache(maxsize=4)
def _load_encoder(
    name: str,
    device: str | None,
    batch_size: int | None,
    precision: str,
    cache_dir: str,
    probe_source: str | None,
) -> TextEncoder:
    # Loading the encoder takes seconds (the first time, exporting and gating its graphs
    # takes ~20 s more); one copy per process serves every asset.
    return pipeline_encoder(
        name, device, precision, cache_dir, batch_size=batch_size, probe_source=probe_source
    )


class EncoderResource(dg.ConfigurableResource):
    """The sentence encoder: a local Hugging Face folder or the packaged all-MiniLM-L6-v2,
    at `precision` (SENTIMENT_ENCODER_PRECISION: auto = int8 ONNX on the CPU when it passes
    the quality gate, else fp32; see lib/encoder_precision). The gate judges int8 on the
    first labelled tweets of SENTIMENT_SOURCE, the data it will embed, when there are enough."""

    name: str
    device: str | None = None
    # None: the pipeline's default for the device (encoder_choice.pipeline_encoder).
    batch_size: int | None = None
    precision: str = "auto"
    # Where the ONNX graphs are cached; None: the current settings' onnx_cache_dir.
    cache_dir: str | None = None

    def get(self) -> TextEncoder:
        settings = current_settings()
        cache_dir = self.cache_dir or str(settings.onnx_cache_dir)
        probe_source = None if settings.is_synthetic else settings.source
        return _load_encoder(
            self.name, self.device, self.batch_size, self.precision, cache_dir, probe_source
        )


@dg.definitions
def resources() -> dg.Definitions:
    settings = current_settings()
    return dg.Definitions(
        resources={
            "encoder": EncoderResource(
                name=settings.encoder,
                device=settings.device,
                precision=settings.encoder_precision,
            )
        }
    )
