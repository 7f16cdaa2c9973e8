"""bench/bench_policy.py's targets: what they say of a timeline too short to judge a policy."""

from bench.bench_policy import _too_short_note, targets


def summaries(runs: dict[str, int], mean: dict[str, float]) -> dict[str, dict]:
    return {
        policy: {
            "summary": {
                "mean_forward_accuracy": mean[policy],
                "drift_months_accuracy": mean[policy],
                "training_runs": runs[policy],
            }
        }
        for policy in runs
    }


def test_a_two_decision_timeline_is_said_to_be_too_short_for_the_targets() -> None:
    policies = summaries(
        {"always": 2, "on_drift": 1, "never": 1},
        {"always": 0.751, "on_drift": 0.737, "never": 0.737},
    )
    found = targets(policies)
    assert found["at_most_half_the_runs"] and not found["within_1_point_of_always"]
    assert not found["runs_target_allows_a_retrain"]
    note = " ".join(_too_short_note(found, {"policies": policies}))
    assert "`always` trains 2 times" in note and "synthetic year" in note


def test_a_year_is_judged_without_the_note() -> None:
    policies = summaries(
        {"always": 11, "on_drift": 3, "never": 1},
        {"always": 0.843, "on_drift": 0.834, "never": 0.657},
    )
    found = targets(policies)
    assert found["within_1_point_of_always"] and found["at_most_half_the_runs"]
    assert found["at_least_10_points_above_never"]
    assert _too_short_note(found, {"policies": policies}) == []
