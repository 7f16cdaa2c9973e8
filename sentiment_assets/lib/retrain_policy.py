"""Which drift events turn into retraining runs: the drift sensor's decision, without Dagster.

Three guards keep retraining from storming:
- each drift event (a drift_report materialization, by storage id) is considered once;
- a month retrained less than `cooldown_seconds` ago is not retrained again;
- a drift event older than the month's latest model is stale: the model was already
  retrained after the drift was measured (this is what breaks drift -> retrain -> drift loops).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DriftEvent:
    storage_id: int
    partition: str
    drifted: bool
    timestamp: float


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
            skipped.append((event, "no drift"))
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
    said = [(event, f"requested (run_key {run_key(event)})") for event in plan.requests]
    said += [(event, f"not requested: {reason}") for event, reason in plan.skipped if event.drifted]
    return sorted(said, key=lambda pair: pair[0].storage_id)
