"""The app's knobs, read once from SENTIMENT_APP_* variables.

Defaults are the safe ones: loopback only, no upload bigger than a few megabytes, tweets of
tweet length. Anything wider must be asked for explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sentiment_assets.lib.core.ports import DEFAULT_PORTS
from sentiment_assets.lib.encoding.encoder import workers_filling_cores
from sentiment_assets.lib.encoding.onnx_encoder import RUNTIMES
from sentiment_assets.lib.settings import read_number

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
DEFAULT_RELOAD_SECONDS = 2.0


class ConfigError(ValueError):
    """A SENTIMENT_APP_* variable the operator must fix; the message names it."""


@dataclass(frozen=True)
class AppConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORTS.app
    user: str | None = None
    password: str | None = None
    # How often the registry alias is looked at; a new champion answers within about this
    # (plus its load). One look is ~3 ms of CPU (an MLflow SQLite query): 0.15% of a core.
    reload_seconds: float = DEFAULT_RELOAD_SECONDS
    # After a version failed to load, it is tried again only after this long (or on demand),
    # so a broken bundle is not downloaded and unpacked every few seconds.
    retry_failed_seconds: float = 60.0
    max_text_chars: int = 1000
    max_upload_bytes: int = 5 * 1024 * 1024
    # Largest request body /api/predict reads; bigger ones get 413 before anything is parsed.
    # 1 MiB holds 1000 texts of 1000 ASCII characters (the other limits' worst case) with
    # room for the JSON around them.
    max_body_bytes: int = 1024 * 1024
    max_batch_rows: int = 50_000
    # Intra-op threads for the models (torch and ONNX Runtime); None leaves the libraries'
    # default (one per core). One thread gives the steadiest single-tweet latency: a tweet is
    # too small to split across cores profitably, and the web server needs a core meanwhile.
    threads: int | None = 1
    # Batches of one request (a file, a list of texts) the ONNX encoder runs side by side,
    # each on `threads` intra-op threads. None: as many as fill the cores (cores // threads,
    # so one per core at the default single thread; one when `threads` is None, whose one
    # batch already takes every core). A single tweet is one batch and never waits on this.
    batch_workers: int | None = None
    # How the transformer models (the embedding family's encoder, a fine-tuned model) run:
    # "auto" = ONNX Runtime on the CPU when it is installed and the export matches torch,
    # else torch; "onnx" or "torch" to insist.
    encoder_runtime: str = "auto"

    @property
    def auth_enabled(self) -> bool:
        return self.user is not None

    @property
    def exposed_without_auth(self) -> bool:
        return self.host not in LOOPBACK_HOSTS and not self.auth_enabled

    def serving_batch_workers(self, cores: int | None = None) -> int:
        """`batch_workers` with None resolved for `cores` (default: this machine's)."""
        if self.batch_workers is not None:
            return self.batch_workers
        if self.threads is None:
            return 1
        return workers_filling_cores(self.threads, cores)


def _number(env: Mapping[str, str], name: str, default: float, cast: type) -> float:
    try:
        return read_number(env, name, default, cast, positive=True)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def load_config(env: Mapping[str, str] | None = None) -> AppConfig:
    env = os.environ if env is None else env
    user = env.get("SENTIMENT_APP_USER") or None
    password = env.get("SENTIMENT_APP_PASSWORD") or None
    # Half a credential is a typo, not a choice: refusing beats silently serving without auth.
    if (user is None) != (password is None):
        raise ConfigError(
            "set both SENTIMENT_APP_USER and SENTIMENT_APP_PASSWORD for basic auth, or neither"
        )
    port = int(_number(env, "SENTIMENT_APP_PORT", DEFAULT_PORTS.app, int))
    if port > 65535:
        raise ConfigError(f"SENTIMENT_APP_PORT must be at most 65535, got {port}")
    max_upload_mb = _number(env, "SENTIMENT_APP_MAX_UPLOAD_MB", 5.0, float)
    max_body_kb = _number(env, "SENTIMENT_APP_MAX_BODY_KB", 1024.0, float)
    threads_raw = env.get("SENTIMENT_APP_THREADS", "").strip().lower()
    threads = None if threads_raw == "auto" else int(_number(env, "SENTIMENT_APP_THREADS", 1, int))
    workers_raw = env.get("SENTIMENT_APP_BATCH_WORKERS", "").strip().lower()
    batch_workers = (
        None
        if workers_raw in ("", "auto")
        else int(_number(env, "SENTIMENT_APP_BATCH_WORKERS", 1, int))
    )
    runtime = env.get("SENTIMENT_APP_ENCODER_RUNTIME", "").strip().lower() or "auto"
    if runtime not in RUNTIMES:
        raise ConfigError(
            f"SENTIMENT_APP_ENCODER_RUNTIME={runtime!r} is not one of {', '.join(RUNTIMES)}"
        )
    return AppConfig(
        host=env.get("SENTIMENT_APP_HOST") or "127.0.0.1",
        port=port,
        user=user,
        password=password,
        reload_seconds=_number(env, "SENTIMENT_APP_RELOAD_SECONDS", DEFAULT_RELOAD_SECONDS, float),
        retry_failed_seconds=_number(env, "SENTIMENT_APP_RETRY_FAILED_SECONDS", 60.0, float),
        max_text_chars=int(_number(env, "SENTIMENT_APP_MAX_CHARS", 1000, int)),
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        # At least one byte: a positive fraction of a KB must not round down to "refuse all".
        max_body_bytes=max(1, int(max_body_kb * 1024)),
        max_batch_rows=int(_number(env, "SENTIMENT_APP_MAX_ROWS", 50_000, int)),
        threads=threads,
        batch_workers=batch_workers,
        encoder_runtime=runtime,
    )
