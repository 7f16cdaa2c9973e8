"""Prior-adjusted versions: a trained version's weights with its scores moved to a month's
re-estimated class prior, registered as that version's child."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from sentiment_assets.lib.models.model_bundle import Predictor, write_card
from sentiment_assets.lib.stats.prior_shift import PriorAdjustment
from sentiment_assets.lib.versions import registry


def base_version(client: MlflowClient, champion: registry.VersionInfo) -> registry.VersionInfo:
    """The trained version under the champion: adjusting an adjusted version again would
    stack two priors on weights that only ever saw the first."""
    if champion.kind == registry.PRIOR_ADJUSTED and champion.parent_version:
        return registry.version_info(client, champion.parent_version)
    return champion


def register_prior_adjusted(
    predictor: Predictor, adjustment: PriorAdjustment, cache_dir: Path, client: MlflowClient
) -> registry.VersionInfo:
    """Register ``predictor``'s bundle with ``adjustment`` on its card, in an MLflow run
    nested under the active one; its bundle becomes the new version's cached copy."""
    card = replace(predictor.card, calibration={}, prior_adjustment=adjustment.as_dict())
    with (
        registry.staging_dir(cache_dir, "prior-adjusted") as staging,
        mlflow.start_run(
            run_name=f"prior-adjusted v{adjustment.parent_version} {adjustment.month[:7]}",
            nested=True,
        ) as run,
    ):
        directory = staging / "bundle"
        shutil.copytree(predictor.directory, directory)
        write_card(directory, card)
        mlflow.log_params(
            {
                "parent_version": adjustment.parent_version,
                "month": adjustment.month,
                "family": card.family,
            }
        )
        mlflow.log_metrics(
            {"training_prior": adjustment.training_prior, "estimated_prior": adjustment.prior}
        )
        info = registry.register_bundle(
            client, run.info.run_id, run.info.artifact_uri, directory, card
        )
        registry.adopt_bundle(directory, info, cache_dir)
    return info
