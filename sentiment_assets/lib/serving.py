"""Loading the registry's champion for prediction (the CLI and the app share this)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlflow.tracking import MlflowClient

from sentiment_assets.lib import registry
from sentiment_assets.lib.model_bundle import Predictor, load_predictor
from sentiment_assets.lib.settings import Settings


class NoChampionError(RuntimeError):
    pass


@dataclass
class LoadedChampion:
    info: registry.VersionInfo
    predictor: Predictor


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


def load_champion(
    settings: Settings,
    info: registry.VersionInfo | None = None,
    encoder_runtime: str = "auto",
    on_fallback: Callable[[str], None] | None = None,
) -> LoadedChampion:
    """The champion, ready to score; its transformer (if any) runs per `encoder_runtime`."""
    from sentiment_assets.lib.onnx_serving import ServingRuntime

    info = info or champion_info(settings)
    bundle = registry.download_bundle(info, settings.registry_cache_dir)
    runtime = ServingRuntime(encoder_runtime, settings.onnx_cache_dir, on_fallback=on_fallback)
    return LoadedChampion(info, load_predictor(bundle, device=settings.device, runtime=runtime))
