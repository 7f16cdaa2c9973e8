"""Which drift events turn into retraining runs: the drift sensor's decision, without Dagster.

Three guards keep retraining from storming:
- each drift event (a drift_report materialization, by storage id) is considered once;
- a month retrained less than `cooldown_seconds` ago is not retrained again;
- a drift event older than the month's latest model is stale: the model was already
  retrained after the drift was measured (this is what breaks drift -> retrain -> drift loops).

A drift retrain trains the fast families first, so a new champion is served within a couple
of minutes; the slow ones (the fine-tuned transformer) train in one follow-up run per
retrain, which goes through the same promotion gate. A shift of the class balance alone is
answered first by re-estimating the prior (`responses`).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field

from sentiment_assets.lib.models.families import family_names
from sentiment_assets.lib.stats.drift import PERFORMANCE_DROP
from sentiment_assets.lib.stats.prior_shift import is_prior_shift_only


def fast_families() -> list[str]:
    """What a drift retrain trains first (each family says whether it is fast)."""
    return family_names(fast=True)


@dataclass(frozen=True)
class DriftEvent:
    storage_id: int
    partition: str
    drifted: bool
    timestamp: float
    # The statistics that flagged it (drift_report's `drifted_statistics`): they decide
    # between the cheap prior re-estimation and a retrain (see `responses`).
    statistics: tuple[str, ...] = ()
    # drift_report's `verdict` in words (lib/stats/drift verdict_word): what the sensor's
    # log says of an undrifted report, so it never calls "not judged" "no drift".
    verdict: str = "no drift"


RECALIBRATE = "recalibrate"
RETRAIN = "retrain"


def responses(event: DriftEvent) -> tuple[str, ...]:
    """What a requested drift event gets, in order. A shift of the class balance alone (the
    content did not move) is answered first by re-estimating the prior, which needs no
    label and no training; a retrain follows only when labels show performance dropped.
    Anything else is retrained."""
    if not is_prior_shift_only(event.statistics):
        return (RETRAIN,)
    if PERFORMANCE_DROP in event.statistics:
        return (RECALIBRATE, RETRAIN)
    return (RECALIBRATE,)


def recalibrate_run_key(event: DriftEvent) -> str:
    return f"recalibrate-{event.partition}-drift-{event.storage_id}"


@dataclass
class SensorCursor:
    after_storage_id: int = 0
    requested_at: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: str | None) -> SensorCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(int(data.get("after_storage_id", 0)), dict(data.get("requested_at", {})))

    def dump(self) -> str:
        return json.dumps(
            {"after_storage_id": self.after_storage_id, "requested_at": self.requested_at},
            sort_keys=True,
        )


@dataclass(frozen=True)
class Plan:
    requests: list[DriftEvent]
    skipped: list[tuple[DriftEvent, str]]
    cursor: SensorCursor


def run_key(event: DriftEvent) -> str:
    """Unique per drift event: a later drift of the same month can retrain it again."""
    return f"retrain-{event.partition}-drift-{event.storage_id}"


def plan_retrains(
    events: list[DriftEvent],
    cursor: SensorCursor,
    latest_model_storage_id: dict[str, int],
    now: float,
    cooldown_seconds: float,
) -> Plan:
    requests: list[DriftEvent] = []
    skipped: list[tuple[DriftEvent, str]] = []
    requested_at = dict(cursor.requested_at)
    after = cursor.after_storage_id
    for event in sorted(events, key=lambda e: e.storage_id):
        after = max(after, event.storage_id)
        if event.storage_id <= cursor.after_storage_id:
            continue
        if not event.drifted:
            skipped.append((event, event.verdict))
            continue
        if latest_model_storage_id.get(event.partition, -1) > event.storage_id:
            skipped.append((event, "the month's model was retrained after this drift report"))
            continue
        last = requested_at.get(event.partition)
        if last is not None and now - last < cooldown_seconds:
            skipped.append(
                (event, f"cooldown: retrained {now - last:.0f}s ago (< {cooldown_seconds:.0f}s)")
            )
            continue
        if any(r.partition == event.partition for r in requests):
            skipped.append((event, "already requested in this tick"))
            continue
        requests.append(event)
        requested_at[event.partition] = now
    return Plan(requests, skipped, SensorCursor(after, requested_at))


def decisions(plan: Plan) -> list[tuple[DriftEvent, str]]:
    """The plan's verdict on each drifted event, in words, in storage-id order.

    Undrifted events are left out: their drift report already says "no drift", and one
    decision per drift report would bury the few that matter.
    """
    said = [(event, _requested(event)) for event in plan.requests]
    said += [(event, f"not requested: {reason}") for event, reason in plan.skipped if event.drifted]
    return sorted(said, key=lambda pair: pair[0].storage_id)


def _requested(event: DriftEvent) -> str:
    answers = responses(event)
    if answers == (RETRAIN,):
        return f"requested (run_key {run_key(event)})"
    said = f"requested {RECALIBRATE} (run_key {recalibrate_run_key(event)})"
    if RETRAIN in answers:
        return f"{said}, then {RETRAIN} (run_key {run_key(event)})"
    return f"{said}; no retrain: the class balance moved, the content did not, and no labels show a drop"


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
