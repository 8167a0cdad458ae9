"""The side-by-side benchmark driver runs end to end (cebra_pipe only, tiny sizes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark


def _driver():
    return load_benchmark("compare_reference")


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


@pytest.mark.slow
def test_driver_sweeps_label_dimensions(tmp_path):
    rows = _driver().main(["--sections", "label-dims", "--label-dims", "20",
                           "--lengths", "4000", "2500", "--clock", "cpu", "--steps", "8",
                           "--warmup", "3", "--repeats", "1", "--budget", "0.5", "--threads", "1",
                           "--markdown", str(tmp_path / "rows.md")])
    # lengths in ascending order (the reference's skip predictions need that)
    assert [(row["timesteps"], row["label_dims"]) for row in rows] == [(2500, "20"),
                                                                       (4000, "20")]
    for row in rows:
        assert row["benchmark"] == "label-dims"
        # the label search adds to the time-contrastive step of the same run, which
        # itself is the floor plus index sampling
        assert row["cebra_pipe_ms"] > 0.5 * row["time_ms"] > 0
        assert row["ratio_to_time"] == row["cebra_pipe_ms"] / row["time_ms"]
        assert row["ratio_to_local_floor"] == row["cebra_pipe_ms"] / row["local_floor_ms"]
        assert row["reference_ms"] is None and row["reference_skipped"] is False
    assert "**label-dims**" in (tmp_path / "rows.md").read_text()


@pytest.mark.slow
def test_driver_times_a_git_revision_beside_the_checkout(tmp_path, monkeypatch):
    driver = _driver()
    extracted = []
    extract = driver.extract_revision
    monkeypatch.setattr(driver, "extract_revision",
                        lambda revision: extracted.append(extract(revision)) or extracted[-1])
    rows = driver.main(["--sections", "steps", "--modes", "continuous", "--lengths", "3000",
                        "--baseline", "HEAD", "--steps", "8", "--warmup", "3", "--repeats", "1",
                        "--budget", "0.5", "--threads", "1", "--clock", "cpu"])
    (row,) = rows
    # the revision's tree was extracted from git for the run and removed afterwards
    assert (Path(extracted[0]) / "cebra_pipe" / "__init__.py").exists() is False
    assert row["baseline"] == "HEAD"
    assert row["baseline_ms"] > 0.5 * row["baseline_local_floor_ms"] > 0
    assert row["ratio_to_baseline"] == pytest.approx(
        (row["cebra_pipe_ms"] / row["local_floor_ms"])
        / (row["baseline_ms"] / row["baseline_local_floor_ms"]))


def test_driver_refuses_an_unknown_revision():
    with pytest.raises(SystemExit, match="--baseline no-such-revision-xyz: git archive"):
        _driver().extract_revision("no-such-revision-xyz")


def test_worker_skips_cases_predicted_over_the_step_budget():
    worker = load_benchmark("_worker")
    rows = [{"mode": "continuous", "layout": "8", "length": 10_000, "ms": 50.0},
            {"mode": "continuous", "layout": "8", "length": 100_000, "ms": 700.0},
            {"mode": "continuous", "layout": "20", "length": 100_000, "ms": None},
            {"mode": "time", "layout": "3cat", "length": 100_000, "ms": 20.0}]
    # linear in length from the longest shorter measured row of the same case
    assert worker._predicted_ms(rows, "continuous", 1_000_000, "8") == 7000.0
    assert worker._predicted_ms(rows, "continuous", 1_000_000, "20") == 0.0
    assert worker._predicted_ms(rows, "continuous", 10_000, "8") == 0.0
    labels = worker.walk_labels(5000, 8)
    assert labels.shape == (5000, 8) and labels.dtype == "float32"
    assert labels.min() >= 0 and labels.max() <= 1
    data = worker.recording(5000)
    assert [worker.continuous_labels(data, layout).shape[1]
            for layout in worker.LAYOUTS] == [1, 2, 3, 8, 20]
