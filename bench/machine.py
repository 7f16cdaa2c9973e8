"""The machine a benchmark ran on, as every result file records it.

`describe()` is stored under a result's "machine" key; `one_line()` is how a markdown report
names it. Timings are only comparable between runs on like machines under like load, so the
load average is part of the description.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

# Distribution names whose versions every description records, where installed.
PACKAGES = ("torch", "onnxruntime", "dagster")


def load_average_1m() -> float | None:
    """The 1-minute load average, or None where the platform has none (Windows)."""
    loads = _load_averages()
    return loads[0] if loads else None


def describe(packages: tuple[str, ...] = ()) -> dict[str, Any]:
    """CPU, memory, GPUs, OS, Python, library versions and the load average right now.

    `packages` names further distributions (e.g. "scikit-learn") whose versions matter to
    the caller's figures.
    """
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        **_gpus(),
        "os": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": _versions(PACKAGES + packages),
        "load_average": _load_averages(),
    }


def one_line(desc: dict[str, Any]) -> str:
    """E.g. "AMD EPYC 7B13, 2 cores, 24 GiB, no GPU, load 1.2", for a markdown header."""
    if desc["cuda"] is None:
        gpu = "GPU unknown (no torch)"
    elif desc["gpus"]:
        gpu = ", ".join(desc["gpus"])
    else:
        gpu = "no GPU"
    load = desc["load_average"]
    return (
        f"{desc['cpu_model']}, {desc['cores']} cores, {desc['memory_gib']:.0f} GiB, {gpu}, "
        f"load {load[0] if load else 'unknown'}"
    )


def _load_averages() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: the platform module's names are all there is
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return round(total / 2**30, 1)


def _gpus() -> dict[str, Any]:
    """CUDA availability and device names; both unknown (None, []) without torch."""
    try:
        import torch
    except ImportError:
        return {"cuda": None, "gpus": []}
    if not torch.cuda.is_available():
        return {"cuda": False, "gpus": []}
    return {
        "cuda": True,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }


def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
