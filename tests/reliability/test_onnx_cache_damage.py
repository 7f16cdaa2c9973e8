"""A truncated graph in the ONNX encoder cache (a full disk, a killed copy): `sentiment doctor`
names it in one line, `sentiment doctor --repair` removes it (the next load exports it again)
and leaves the intact graphs. Real graphs, exported and checked by the encoder's own
`export_verified`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sentiment_assets.lib.encoding.onnx_encoder import export_verified, is_cached
from tests.conftest import home_paths

pytestmark = [pytest.mark.reliability]


class MaskedSum(torch.nn.Module):
    """A graph with the encoder's two inputs, small enough to export in a second."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (input_ids * attention_mask).float().sum(dim=-1, keepdim=True)


def export_graph(path: Path) -> None:
    ids = torch.tensor([[101, 7, 102], [101, 8, 102]])
    export_verified(MaskedSum(), (ids, torch.ones_like(ids)), path, identity=path.stem)


def doctor(home: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sentiment_assets.cli", "doctor", *args],
        env={**os.environ, **home_paths(home), "SENTIMENT_ONNX_CACHE": str(cache)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_truncated_cached_graph_is_reported_and_removed_on_repair(
    tmp_path: Path, record_property
) -> None:
    cache = tmp_path / "onnx_cache"
    intact, truncated = cache / "encoder-intact.onnx", cache / "encoder-truncated.onnx"
    export_graph(intact)
    export_graph(truncated)
    os.truncate(truncated, truncated.stat().st_size // 2)
    # Older than an export in progress could be.
    old = truncated.stat().st_mtime - 3600
    os.utime(truncated, (old, old))
    home = tmp_path / "home"

    found = doctor(home, cache)
    assert found.returncode == 1, found.stdout + found.stderr
    damaged = [line for line in found.stdout.splitlines() if line.startswith("DAMAGED")]
    assert len(damaged) == 1 and str(truncated) in damaged[0], found.stdout
    assert "--repair" in damaged[0] and "Traceback" not in found.stderr
    record_property("measured", damaged[0].split(": ", 1)[1][:100])

    repaired = doctor(home, cache, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"removed  onnx       {truncated}" in repaired.stdout
    assert not truncated.exists() and not truncated.with_suffix(".json").exists()
    assert is_cached(intact), "an intact graph is kept"
    assert doctor(home, cache).returncode == 0, "nothing left to report"
