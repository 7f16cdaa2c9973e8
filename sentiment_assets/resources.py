"""Dagster resources: thin, configurable wrappers around the pure modules in lib/."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from sentiment_assets.lib import warehouse
from sentiment_assets.lib.settings import HomeLayout


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file; every connection is short-lived."""

    database: str

    @property
    def path(self) -> Path:
        return Path(self.database)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.path) as con:
            warehouse.ensure_schema(con)
            yield con


class PlatformResource(dg.ConfigurableResource, HomeLayout):
    """Where the platform's files live (the folders of `HomeLayout`) and which tweets it reads."""

    home: str
    source: str


@functools.lru_cache(maxsize=4)
def _load_encoder(name: str, device: str | None, batch_size: int):
    # Loading the transformer takes seconds; one copy per process serves every asset.
    from sentiment_assets.lib.encoder import TextEncoder

    return TextEncoder(name, device=device, batch_size=batch_size)


class EncoderResource(dg.ConfigurableResource):
    """The sentence encoder: a local Hugging Face folder or the packaged all-MiniLM-L6-v2."""

    name: str = "all-MiniLM-L6-v2"
    device: str | None = None
    batch_size: int = 32

    def get(self):
        return _load_encoder(self.name, self.device, self.batch_size)
