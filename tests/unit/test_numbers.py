import math

import dagster as dg
import numpy as np

from sentiment_assets.lib.core.numbers import rounded, significant


def test_significant_keeps_four_digits_at_any_scale():
    assert significant(0.7955230111360585) == 0.7955
    assert significant(1234.5678) == 1235.0
    assert significant(-0.000123456) == -0.0001235
    assert significant(0.7955230111360585, digits=2) == 0.8


def test_significant_leaves_zero_and_non_finite_values_alone():
    assert significant(0.0) == 0.0
    assert math.isnan(significant(float("nan")))
    assert significant(float("inf")) == float("inf")


def test_rounded_rounds_floats_everywhere_and_nothing_else():
    metadata = {
        "accuracy": np.float32(0.83333333),
        "by_month": {"2024-01": [0.123456, 7]},
        "rows": 1500,
        "drifted": True,
        "note": "0.123456 stays text",
        "table": dg.MetadataValue.json({"f1": 0.123456}),
    }
    result = rounded(metadata)
    assert result.pop("table") is metadata["table"]
    assert result == {
        "accuracy": 0.8333,
        "by_month": {"2024-01": [0.1235, 7]},
        "rows": 1500,
        "drifted": True,
        "note": "0.123456 stays text",
    }
    assert type(result["accuracy"]) is float and result["drifted"] is True
