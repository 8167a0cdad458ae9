"""The side-by-side benchmark driver runs end to end (cebra_pipe only, tiny sizes)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _driver():
    spec = importlib.util.spec_from_file_location("compare_reference",
                                                  BENCHMARKS / "compare_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_driver_measures_every_core_section(tmp_path):
    rows = _driver().main(["--sections", "steps", "multi-session", "transform", "memory",
                           "--modes", "time", "mixed", "--lengths", "3000", "--long", "4000",
                           "--steps", "8", "--warmup", "3", "--repeats", "1", "--budget", "0.5",
                           "--threads", "1", "--json", str(tmp_path / "rows.json"),
                           "--markdown", str(tmp_path / "rows.md")])
    by_kind = {row["benchmark"] for row in rows}
    assert by_kind == {"step", "multi-session", "transform", "memory"}
    steps = [row for row in rows if row["benchmark"] == "step"]
    assert [row["mode"] for row in steps] == ["time", "mixed"]
    for row in steps:
        # A step is the network plus sampling: never cheaper than half the floor, and
        # no reference was given, so there is nothing to compare with.
        assert row["cebra_pipe_ms"] > 0.5 * row["floor_ms"] > 0
        assert row["cebra_pipe_ms"] > 0.5 * row["local_floor_ms"] > 0
        assert row["ratio_to_local_floor"] == row["cebra_pipe_ms"] / row["local_floor_ms"]
        assert row["reference_ms"] is None and row["speedup"] is None
    transform = next(row for row in rows if row["benchmark"] == "transform")
    assert transform["cebra_pipe_samples_per_s"] > 1000
    memory = next(row for row in rows if row["benchmark"] == "memory")
    # ru_maxrss is a high-water mark: a small fit may stay below the import peak.
    assert memory["cebra_pipe_peak_mb"] >= memory["cebra_pipe_import_mb"] > 50
    table = (tmp_path / "rows.md").read_text()
    assert "**step**" in table and "| time | 3000 |" in table
