"""Loading registered versions, for scoring (the Dagster steps) or serving (the CLI, the app).

Every caller goes through `load_version`: the version's bundle is fetched once into the local
registry cache, then loaded with the same text cleaning and embedding as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from sentiment_assets.lib.encoding.encoder_choice import ServingRuntime
from sentiment_assets.lib.models.model_bundle import Predictor, load_predictor
from sentiment_assets.lib.settings import Settings
from sentiment_assets.lib.versions import registry


class NoChampionError(RuntimeError):
    pass


@dataclass
class LoadedChampion:
    info: registry.VersionInfo
    predictor: Predictor


def load_version(
    info: registry.VersionInfo,
    cache_dir: Path,
    *,
    encoder: object = None,
    device: str | None = None,
    runtime: ServingRuntime | None = None,
    tracking_uri: str | None = None,
) -> Predictor:
    """A registered version, ready to score.

    `encoder`: a sentence encoder the caller already holds; an embedding model trained on it
    shares it (any other model ignores it). `runtime`: how a serving process runs the
    transformers (ONNX Runtime or torch); None scores exactly as training did, with torch.
    `tracking_uri`: the MLflow server to fetch a bundle from (see `registry.download_bundle`).
    """
    bundle = registry.download_bundle(info, cache_dir, tracking_uri)
    return load_predictor(bundle, device=device, encoder=encoder, runtime=runtime)


def champion_info(settings: Settings) -> registry.VersionInfo:
    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    info = registry.champion(MlflowClient(settings.mlflow_tracking_uri))
    if info is None:
        raise NoChampionError(
            f"no model has the alias '{registry.CHAMPION_ALIAS}' in {settings.mlflow_tracking_uri}: "
            "build the pipeline first (make pipeline)"
        )
    return info


def serving_runtime(
    settings: Settings,
    encoder_runtime: str = "auto",
    threads: int | None = None,
    on_fallback: Callable[[str], None] | None = None,
    batch_workers: int = 1,
) -> ServingRuntime:
    """How a serving process runs transformers, its exports cached under the settings' home."""
    return ServingRuntime(
        encoder_runtime,
        settings.onnx_cache_dir,
        threads,
        batch_workers=batch_workers,
        on_fallback=on_fallback,
    )


def load_champion(
    settings: Settings,
    runtime: ServingRuntime,
    info: registry.VersionInfo | None = None,
) -> LoadedChampion:
    """The champion (or `info`), ready to serve on `runtime`."""
    info = info or champion_info(settings)
    # The settings' server, not the process's tracking URI: the app and the CLI are handed
    # settings, which need not be the environment's.
    predictor = load_version(
        info,
        settings.registry_cache_dir,
        device=settings.device,
        runtime=runtime,
        tracking_uri=settings.mlflow_tracking_uri,
    )
    return LoadedChampion(info, predictor)
