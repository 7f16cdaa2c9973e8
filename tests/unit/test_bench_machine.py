"""bench/machine.py describes the machine it runs on, and the reports name it."""

import os
import platform

import pytest

from bench.chaos import markdown as chaos_markdown
from bench.machine import describe, one_line
from bench.results_io import write_result

EXPECTED_KEYS = {
    "cpu_model",
    "cores",
    "memory_gib",
    "cuda",
    "gpus",
    "os",
    "kernel",
    "python",
    "versions",
    "load_average",
}


def test_describe_reports_this_machine():
    desc = describe(("pytest",))
    assert set(desc) == EXPECTED_KEYS
    assert desc["cores"] == os.cpu_count()
    assert desc["memory_gib"] > 0
    assert desc["cpu_model"].strip()
    assert desc["python"] == platform.python_version()
    assert desc["kernel"] == platform.release()
    # torch is a project dependency, so CUDA availability is known (True or False).
    assert desc["cuda"] in (True, False)
    assert bool(desc["gpus"]) == desc["cuda"]
    assert {"torch", "onnxruntime", "dagster", "pytest"} <= set(desc["versions"])
    assert len(desc["load_average"]) == 3 and all(x >= 0 for x in desc["load_average"])


def test_one_line_names_cores_memory_gpu_and_load():
    desc = {
        **describe(),
        "cpu_model": "Test CPU",
        "cores": 2,
        "memory_gib": 23.5,
        "cuda": False,
        "gpus": [],
        "load_average": [1.2, 0.8, 0.5],
    }
    assert one_line(desc) == "Test CPU, 2 cores, 24 GiB, no GPU, load 1.2"
    gpu = {**desc, "cuda": True, "gpus": ["NVIDIA H100"], "load_average": None}
    assert one_line(gpu) == "Test CPU, 2 cores, 24 GiB, NVIDIA H100, load unknown"
    assert f"{os.cpu_count()} cores" in one_line(describe())


def test_chaos_report_is_headed_by_the_machine_line():
    machine = describe()
    row = {"scenario": "test_x::test_y", "outcome": "passed", "seconds": 1.5, "measured": ""}
    header, *table = chaos_markdown([row], machine).splitlines()
    assert one_line(machine) in header
    assert "this machine" not in header
    assert "| `test_x::test_y` | passed | 1.5 | - |" in table


def test_write_result_writes_json_and_markdown(tmp_path, capsys):
    out, md = tmp_path / "r" / "result.json", tmp_path / "result.md"
    write_result({"ratio": 1.5}, out, md, lambda result: f"ratio {result['ratio']}\n")
    assert out.read_text() == '{\n  "ratio": 1.5\n}\n'
    assert md.read_text() == "ratio 1.5\n"
    assert capsys.readouterr().out == "ratio 1.5\n\n"


def test_write_result_keeps_the_json_when_the_rendering_fails(tmp_path):
    def broken(result: dict) -> str:
        raise KeyError("machine")

    out, md = tmp_path / "result.json", tmp_path / "result.md"
    with pytest.raises(KeyError):
        write_result({"ratio": 1.5}, out, md, broken)
    assert out.exists() and not md.exists()
