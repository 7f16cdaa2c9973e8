"""Writing a benchmark's result: the JSON file, its markdown rendering, and the rendering shown."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_result(
    result: dict[str, Any], out: Path, md: Path, markdown: Callable[[dict[str, Any]], str]
) -> None:
    """Write `result` to `out` as JSON and `markdown(result)` to `md`, then print the latter.

    The JSON is written first: a rendering that fails loses no measurement.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(text)
    print(text)
