"""The landing folder: new tweet files are dropped here and picked up by new_data_sensor."""

from __future__ import annotations

import hashlib
from pathlib import Path

SUPPORTED_SUFFIXES = {".csv", ".jsonl", ".ndjson", ".parquet"}
QUARANTINE = "quarantine"


def file_fingerprint(path: Path) -> str:
    """Changes whenever the content changes; cheap enough for files of a few hundred MB."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"{stat.st_size}:{digest.hexdigest()[:16]}"


def landing_files(landing_dir: Path) -> list[Path]:
    """Files waiting in the landing folder (not the quarantine, not hidden or partial files)."""
    if not landing_dir.is_dir():
        return []
    return sorted(
        p
        for p in landing_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
    )


def quarantine(path: Path, reason: str) -> Path:
    """Move a file that cannot be read out of the way, with its reason beside it."""
    target_dir = path.parent / QUARANTINE
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    path.replace(target)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
    return target
