"""Numbers as people read them: metadata shows a score to the digits that matter."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

# Four significant digits tell 0.7955 from 0.7961; more is noise of the sample, not signal.
SIGNIFICANT_DIGITS = 4


def significant(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """`value` rounded to `digits` significant digits (0.7955230111 -> 0.7955, 1234.5678 ->
    1235.0); zero, NaN and infinities are returned as they are."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def rounded(metadata: Mapping[str, Any], digits: int = SIGNIFICANT_DIGITS) -> dict[str, Any]:
    """`metadata` with every float (in lists and dicts too) rounded by `significant`; other
    values (ints, text, Dagster MetadataValues) are left as they are."""
    return {key: _round_any(value, digits) for key, value in metadata.items()}


def _round_any(value: Any, digits: int) -> Any:
    # NumPy's floats count as Real too; ints and bools are Integral and stay exact.
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return significant(value, digits)
    # Exact types: Dagster's MetadataValues are named tuples, and are left whole.
    if type(value) not in (list, tuple, dict):
        return value
    if isinstance(value, dict):
        return {key: _round_any(item, digits) for key, item in value.items()}
    return type(value)(_round_any(item, digits) for item in value)
