"""The sentence encoder resource: one loaded transformer per process."""

from __future__ import annotations

import functools

import dagster as dg

from sentiment_assets.environment import current_settings
from sentiment_assets.lib.encoder import TextEncoder


@functools.lru_cache(maxsize=4)
def _load_encoder(name: str, device: str | None, batch_size: int) -> TextEncoder:
    # Loading the transformer takes seconds; one copy per process serves every asset.
    return TextEncoder(name, device=device, batch_size=batch_size)


class EncoderResource(dg.ConfigurableResource):
    """The sentence encoder: a local Hugging Face folder or the packaged all-MiniLM-L6-v2."""

    name: str
    device: str | None = None
    batch_size: int = 32

    def get(self) -> TextEncoder:
        return _load_encoder(self.name, self.device, self.batch_size)


@dg.definitions
def resources() -> dg.Definitions:
    settings = current_settings()
    return dg.Definitions(
        resources={"encoder": EncoderResource(name=settings.encoder, device=settings.device)}
    )
