"""What answers a month after its training decision, without Dagster: the prior
re-estimation of a balance shift, and the fine-tuned follow-up of a retrain.

Whether a month trains is the retraining policy's call (training_decision.py). What is left
here is what the sensors do beside it:
- a drift report whose flagged statistics are a shift of the class balance alone (the
  content did not move) gets the prior re-estimated, which needs no label and no training
  (drift_sensor; each drift report is considered once);
- a retrain trains the fast families first, so a new champion is served within a couple of
  minutes; the slow ones (the fine-tuned transformer) train in one follow-up run per
  retrain, through the same promotion gate (follow_up_sensor).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.stats.prior_shift import is_prior_shift_only


def fast_families() -> list[str]:
    """What a retrain trains first (each family says whether it is fast)."""
    return family_names(fast=True)


@dataclass(frozen=True)
class DriftEvent:
    storage_id: int
    partition: str
    drifted: bool
    # The statistics that flagged it (drift_report's `drifted_statistics`).
    statistics: tuple[str, ...] = ()

    @property
    def needs_recalibration(self) -> bool:
        return self.drifted and is_prior_shift_only(self.statistics)


def recalibrate_run_key(event: DriftEvent) -> str:
    """One re-estimation per drift report: a later report of the same month gets its own."""
    return f"recalibrate-{event.partition}-drift-{event.storage_id}"


def cursor_storage_id(raw: str | None) -> int:
    """The last drift report drift_sensor considered, from its cursor (a JSON object, so
    the cursors it wrote when it also requested retrains still read)."""
    return int(json.loads(raw).get("after_storage_id", 0)) if raw else 0


def dump_cursor(storage_id: int) -> str:
    return json.dumps({"after_storage_id": storage_id})


def follow_up_run_key(parent_run_id: str) -> str:
    """One follow-up per retrain run: the key dedups a sensor that sees the run twice."""
    return f"follow-up-of-{parent_run_id}"


def follow_up_families(trained: Collection[str], model_materialized: bool) -> list[str]:
    """The families a finished retrain run leaves to a follow-up run: the follow-up ones it
    did not train, provided its sentiment_model was materialized (a run that failed before
    that trained nothing to follow up; a run stopped by the promotion gate did, and the
    fine-tuned family may still beat the champion the fast ones could not)."""
    if not model_materialized:
        return []
    return [name for name in family_names(fast=False) if name not in trained]
