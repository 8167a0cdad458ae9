"""The pipeline benchmark's bookkeeping: jobs from Snakemake's log, costs per rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmark_scripts import load_benchmark


def _bench():
    return load_benchmark("bench_pipeline")


HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def _benchmark(path: Path, wall: float, cpu: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{HEADER}\n{wall}\t0:00:01\t1\t1\t1\t1\t0\t0\t0\t{cpu}\n")


def test_jobs_done_reads_the_last_progress_line():
    log = "1 of 5 steps (20%) done\n...\n4 of 5 steps (80%) done\n5 of 5 steps (100%) done\n"
    assert _bench().jobs_done(log) == 5


def test_jobs_done_refuses_a_log_without_progress():
    with pytest.raises(RuntimeError, match="no finished job"):
        _bench().jobs_done("Building DAG of jobs...\nNothing to be done.\n")


def test_rule_costs_sum_per_rule(tmp_path):
    results = tmp_path / "results" / "demo"
    _benchmark(results / "benchmarks" / "decode" / "rat1" / "s1" / "time" / "none.tsv", 2.5, 1.5)
    _benchmark(results / "benchmarks" / "decode" / "rat2" / "s1" / "time" / "none.tsv", 3.5, 2.0)
    _benchmark(results / "benchmarks" / "report_overview.tsv", 4.0, 0.0)
    (results / "tables").mkdir()
    (results / "tables" / "decoding.tsv").write_text("a\tb\n1\t2\n")  # not a benchmark
    costs = _bench().rule_costs(tmp_path)
    assert costs == {"decode": {"jobs": 2, "wall_s": 6.0, "cpu_s": 3.5},
                     "report_overview": {"jobs": 1, "wall_s": 4.0, "cpu_s": 0.0}}


def test_table_lists_every_tree_and_rule():
    rows = [{"tree": "a8ca1aa", "jobs": 70, "cpu_s": 500.0, "wall_s": 241.0, "load": 1.5,
             "cores": 2, "rules": {"decode": {"jobs": 15, "wall_s": 90.0, "cpu_s": 80.0}}},
            {"tree": "working tree", "jobs": 55, "cpu_s": 450.0, "wall_s": 200.0, "load": 1.4,
             "cores": 2, "rules": {"evaluate": {"jobs": 9, "wall_s": 60.0, "cpu_s": 50.0}}}]
    text = _bench().table(rows, rules=True)
    assert "| a8ca1aa | 70 | 500.0 | 241.0 | 1.50 | 2 |" in text
    assert "| decode | 15, 90.0, 80.0 | - |" in text
    assert "| evaluate | - | 9, 60.0, 50.0 |" in text
