"""Files that appear whole or not at all: written under a hidden name, then renamed in.

Readers in other processes (the app, a second run, the sensors) may open any of these files
at any moment; a rename within one folder is atomic, so they see the old file or the new
one, never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# mkstemp makes files private (0600); these are shared with the app, which may run as
# another user (a container), so they get a file's usual mode.
SHARED_FILE_MODE = 0o644


@contextmanager
def replacing(target: Path, suffix: str = "") -> Iterator[Path]:
    """A hidden staging path beside `target`: write it in the block, and on a clean exit it
    replaces `target`. On an error nothing is left behind and `target` is untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=suffix, dir=target.parent)
    os.close(fd)
    staging = Path(name)
    try:
        yield staging
        os.chmod(staging, SHARED_FILE_MODE)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def copy_to_parquet(con, query: str, target: Path) -> int:  # con: a DuckDB connection
    """Write the rows of `query` to the Parquet file `target` atomically; returns how many.

    COPY writes straight into the hidden staging file: its own temp file (`tmp_<name>`) would
    be visible beside `target`, where a reader listing the folder would open it half-written.
    """
    with replacing(target, suffix=".parquet") as staging:
        return con.execute(
            f"COPY ({query}) TO '{staging}' (FORMAT parquet, USE_TMP_FILE false)"
        ).fetchone()[0]


def write_text(target: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically."""
    with replacing(target) as staging:
        staging.write_text(text, encoding="utf-8")
    return target


@contextmanager
def exclusive_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `lock_file` (created if missing) for the block.

    Processes that start together (a pipeline, the webserver, the daemon) take turns here;
    the lock goes with the process, so a killed holder never leaves it stuck.
    """
    import fcntl

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
