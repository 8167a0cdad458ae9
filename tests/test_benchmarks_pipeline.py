"""The pipeline benchmark's bookkeeping: jobs from Snakemake's log, costs per rule."""

from __future__ import annotations

import subprocess
import sys
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
    bounds = {"job_s": 400.0, "idle_core_s": 82.0, "critical_s": 150.0,
              "critical_path": ["ingest", "train_multi"]}
    rows = [{"tree": "a8ca1aa", "jobs": 70, "cpu_s": 500.0, "wall_s": 241.0, "load": 1.5,
             "cores": 2, **bounds,
             "rules": {"decode": {"jobs": 15, "wall_s": 90.0, "cpu_s": 80.0}}},
            {"tree": "working tree", "jobs": 55, "cpu_s": 450.0, "wall_s": 200.0, "load": 1.4,
             "cores": 2, **bounds,
             "rules": {"evaluate": {"jobs": 9, "wall_s": 60.0, "cpu_s": 50.0}}}]
    text = _bench().table(rows, rules=True)
    assert "| a8ca1aa | 70 | 500.0 | 241.0 | 1.50 | 2 | 400 | 82 | 150 |" in text
    assert "critical path of working tree: ingest -> train_multi" in text
    assert "| decode | 15, 90.0, 80.0 | - |" in text
    assert "| evaluate | - | 9, 60.0, 50.0 |" in text


LOG = """\
Select jobs to execute...
[Wed Dec  2 10:00:00 2026]
rule ingest:
    output: s1.npz
    jobid: 3
    reason: Missing output files: s1.npz
Shell command: python -m cebra_pipe ingest
[Wed Dec  2 10:00:02 2026]
Finished jobid: 3 (Rule: ingest)
[Wed Dec  2 10:00:02 2026]
rule train:
    input: s1.npz
    output: m1.pt, m2.pt
    jobid: 2
[Wed Dec  2 10:00:02 2026]
rule figures:
    input: s1.npz
    output: f.png
    jobid: 4
[Wed Dec  2 10:00:05 2026]
Finished jobid: 4 (Rule: figures)
[Wed Dec  2 10:00:12 2026]
Finished jobid: 2 (Rule: train)
[Wed Dec  2 10:00:12 2026]
localrule report:
    input: m2.pt, f.png
    output: r.html
    jobid: 1
[Wed Dec  2 10:00:13 2026]
Finished jobid: 1 (Rule: report)
[Wed Dec  2 10:00:13 2026]
rule broken:
    input: r.html
    output: never.txt
    jobid: 5
"""


def test_timeline_reads_when_each_job_ran_and_what_it_read():
    jobs = _bench().timeline(LOG)
    # the job that never finished is left out; times count from the first start
    assert [(j["rule"], j["start"], j["end"]) for j in jobs] == [
        ("ingest", 0, 2), ("train", 2, 12), ("figures", 2, 5), ("report", 12, 13)]
    assert jobs[1]["inputs"] == ["s1.npz"] and jobs[1]["outputs"] == ["m1.pt", "m2.pt"]


def test_schedule_finds_the_critical_path_and_the_idle_cores():
    bench = _bench()
    result = bench.schedule(bench.timeline(LOG), cores=2, wall_s=15.0)
    # ingest 2 s -> train 10 s -> report 1 s; figures (3 s) runs beside train
    assert result["critical_s"] == 13.0
    assert result["critical_path"] == ["ingest", "train", "report"]
    assert result["job_s"] == 16.0 and result["idle_core_s"] == 14.0


def test_schedule_of_a_real_snakemake_log(tmp_path):
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "c.txt", "d.txt"\n'
        'rule a:\n    output: "a.txt"\n    shell: "sleep 1.1; echo a > {output}"\n'
        'rule b:\n    input: "a.txt"\n    output: "c.txt"\n'
        '    shell: "sleep 2.1; cat {input} > {output}"\n'
        'rule d:\n    input: "a.txt"\n    output: "d.txt"\n    shell: "echo d > {output}"\n')
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "-d",
                           str(tmp_path), "-s", str(tmp_path / "Snakefile")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    bench = _bench()
    jobs = bench.timeline(done.stdout + done.stderr)
    assert sorted(job["rule"] for job in jobs) == ["a", "all", "b", "d"]
    result = bench.schedule(jobs, cores=2, wall_s=10.0)
    assert result["critical_path"] == ["a", "b", "all"]
    assert 3 <= result["critical_s"] <= 6  # 1 s clock resolution, start-up of each job
