"""Which files a source names (a path, a folder or a glob), and the month and synthetic config
every reader normalises."""

from __future__ import annotations

import glob
from datetime import date
from pathlib import Path

from sentiment_assets.lib.data.sources.records import SUPPORTED_EXTENSIONS
from sentiment_assets.lib.data.synthetic import SyntheticConfig


def _month(month: date) -> date:
    return date(month.year, month.month, 1)


def _required(config: SyntheticConfig | None) -> SyntheticConfig:
    if config is None:
        raise ValueError("the synthetic source needs its SyntheticConfig (Settings.synthetic)")
    return config


def source_files(source: str) -> list[Path]:
    """The data files a path, directory or glob names (sorted, supported extensions only).

    An explicitly named file with another extension is an error; directories and globs simply
    skip such files (a README in the landing folder is not data).
    """
    if glob.has_magic(source):
        candidates = [Path(p) for p in sorted(glob.glob(source))]
    else:
        path = Path(source)
        if path.is_dir():
            candidates = sorted(path.iterdir())
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                raise ValueError(f"unsupported file type {path.suffix!r}: {path}")
            return [path]
        else:
            raise FileNotFoundError(source)
    return [p for p in candidates if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS]
