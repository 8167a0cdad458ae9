"""Cost of the README's main job: ``snakemake --cores N`` on a config, from clean results.

For each tree (this checkout, or a git revision checked out as a temporary worktree),
the workflow runs in a fresh working directory holding a copy of the tree's
``config/``, with ``PYTHONPATH`` set to the tree so every job runs that tree's
``cebra_pipe``. Reported per tree:

* ``jobs``: jobs Snakemake ran (its own count, the ``all`` target included);
* ``cpu_s``: user + system CPU seconds of Snakemake and every job (``getrusage`` of the
  children, so nothing is sampled or missed);
* ``wall_s``: wall time of the whole run;
* ``load``: the 1-minute load average, mean of samples every 5 s during the run (the
  machine's other work inflates wall time, and CPU time a little);
* ``critical_s``: the DAG's critical path, the longest chain of jobs each waiting on the
  one before, in the run's own job times (from Snakemake's log: when each job started
  and finished, 1 s resolution, and which job's outputs it reads); no scheduler on any
  number of cores finishes sooner. ``critical_path`` names its rules in order;
* ``job_s``: the jobs' wall seconds added up, and ``idle_core_s``: cores x wall minus
  that, the core time the schedule left unused (``job_s / cores`` and ``critical_s``
  are the two lower bounds of the wall time);
* per rule (``--rules``): jobs, and the sums of the ``benchmark:`` files' wall seconds
  and (sampled, so short jobs read 0) CPU seconds.

With ``--parallel`` the trees run at the same time, so they share the same machine load
(on a shared machine a fairer comparison of CPU seconds than runs one after another;
wall time is then not the idle figure).

Usage::

    python benchmarks/bench_pipeline.py                      # this checkout, shipped config
    python benchmarks/bench_pipeline.py --revisions a8ca1aa HEAD --parallel --rules \\
        --cores 2 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORKTREE = "working tree"


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The tree of ``revision`` (this checkout for :data:`WORKTREE`), removed afterwards."""
    if revision == WORKTREE:
        yield REPO
        return
    folder = Path(tempfile.mkdtemp(prefix="bench_pipeline_tree_")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], cwd=REPO,
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO,
                       check=False, capture_output=True)


class LoadSampler:
    """Mean 1-minute load average over a run, sampled every ``every`` seconds."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)


def jobs_done(log: str) -> int:
    """Jobs Snakemake finished, from its last ``k of n steps`` line."""
    done = re.findall(r"^(\d+) of (\d+) steps? \(.*\) done", log, flags=re.MULTILINE)
    if not done:
        raise RuntimeError("Snakemake reported no finished job; its log:\n" + log[-3000:])
    return int(done[-1][0])


_STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
_RULE = re.compile(r"^(?:local)?rule (\w+):$")
_FINISHED = re.compile(r"^Finished jobid: (\d+) ")


def timeline(log: str) -> list[dict[str, Any]]:
    """The jobs of a Snakemake log, in the order they started.

    Returns dicts with ``rule``, ``jobid``, ``start`` and ``end`` (seconds after the
    first job started), ``inputs`` and ``outputs`` (file names as the log lists them).
    """
    jobs: dict[int, dict[str, Any]] = {}
    stamp, current = None, None
    for line in log.splitlines():
        found = _STAMP.match(line)
        if found:
            stamp = time.mktime(time.strptime(found.group(1), "%a %b %d %H:%M:%S %Y"))
            continue
        found = _RULE.match(line)
        if found:
            current = {"rule": found.group(1), "start": stamp, "end": None,
                       "inputs": [], "outputs": []}
            continue
        if current is not None and line.startswith("    "):  # a field of the job
            key, _, value = line.strip().partition(": ")
            if key in ("input", "output"):
                current[key + "s"] = value.split(", ")
            elif key == "jobid":
                current["jobid"] = int(value)
                jobs[current["jobid"]] = current
        found = _FINISHED.match(line)
        if found and int(found.group(1)) in jobs:
            jobs[int(found.group(1))]["end"] = stamp
    started = sorted((job for job in jobs.values() if job["end"] is not None),
                     key=lambda job: (job["start"], job["jobid"]))
    origin = started[0]["start"] if started else 0.0
    for job in started:
        job["start"] -= origin
        job["end"] -= origin
    return started


def schedule(jobs: list[dict[str, Any]], cores: int, wall_s: float) -> dict[str, Any]:
    """Critical path, summed job time and idle core time of a :func:`timeline`."""
    made_by = {name: job["jobid"] for job in jobs for name in job["outputs"]}
    longest: dict[int, tuple[float, list[str]]] = {}
    for job in jobs:  # in start order, so every job's inputs' makers come first
        before = [longest[made_by[name]] for name in job["inputs"] if name in made_by
                  and made_by[name] in longest]
        length, chain = max(before, default=(0.0, []), key=lambda item: item[0])
        longest[job["jobid"]] = (length + job["end"] - job["start"], chain + [job["rule"]])
    # ties go to the longer chain, so the path runs to the target rule (0 s)
    critical, path = max(longest.values(), default=(0.0, []),
                         key=lambda item: (item[0], len(item[1])))
    job_s = sum(job["end"] - job["start"] for job in jobs)
    return {"critical_s": critical, "critical_path": path, "job_s": job_s,
            "idle_core_s": round(cores * wall_s - job_s, 1)}


def rule_costs(workdir: Path) -> dict[str, dict[str, float]]:
    """Per rule: jobs, summed wall and CPU seconds of its ``benchmark:`` files.

    A file's rule is the name under the nearest ``benchmarks`` folder of the results
    (``benchmarks/<rule>/...`` or ``benchmarks/<rule>.tsv``).
    """
    rules: dict[str, dict[str, float]] = {}
    for path in sorted(workdir.rglob("*.tsv")):
        parts = path.relative_to(workdir).parts
        if "benchmarks" not in parts[:-1]:
            continue
        rule = Path(parts[len(parts) - 1 - parts[::-1].index("benchmarks") + 1]).stem
        header, values = path.read_text().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t")))
        cost = rules.setdefault(rule, {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0})
        cost["jobs"] += 1
        cost["wall_s"] += float(row["s"])
        cost["cpu_s"] += float(row.get("cpu_time") or 0.0)
    return dict(sorted(rules.items()))


def run_workflow(tree: Path, cores: int, configfile: str | None) -> dict[str, Any]:
    """Run ``tree``'s workflow once in a fresh working directory; its costs."""
    workdir = Path(tempfile.mkdtemp(prefix="bench_pipeline_run_"))
    shutil.copytree(tree / "config", workdir / "config")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tree), os.environ.get("PYTHONPATH", "")) if p)}
    command = [sys.executable, "-m", "snakemake", "-s", str(tree / "Snakefile"), "-d",
               str(workdir), "--cores", str(cores)]
    if configfile:
        command += ["--configfile", configfile]
    # RUSAGE_CHILDREN is process-wide: with --parallel, each run is its own Python
    # (``_measure``) so its children's CPU time is not mixed with the other run's.
    measure = ("import json, resource, subprocess, sys, time\n"
               "before = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "start = time.perf_counter()\n"
               "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
               "wall = time.perf_counter() - start\n"
               "after = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)\n"
               "print(json.dumps({'rc': done.returncode, 'wall_s': wall, 'cpu_s': cpu,"
               " 'log': done.stdout + done.stderr}))\n")
    with LoadSampler() as load:
        result = subprocess.run([sys.executable, "-c", measure, *command], env=env, cwd=workdir,
                                capture_output=True, text=True, check=True)
    measured = json.loads(result.stdout)
    if measured["rc"] != 0:
        raise RuntimeError(f"snakemake failed in {workdir} (exit {measured['rc']}):\n"
                           + measured["log"][-5000:])
    costs = {"jobs": jobs_done(measured["log"]), "cpu_s": round(measured["cpu_s"], 1),
             "wall_s": round(measured["wall_s"], 1), "load": round(load.mean, 2),
             "cores": cores,
             **schedule(timeline(measured["log"]), cores, measured["wall_s"]),
             "rules": rule_costs(workdir)}
    shutil.rmtree(workdir)
    return costs


def measure(revision: str, cores: int, configfile: str | None) -> dict[str, Any]:
    with checkout(revision) as tree:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, check=True,
                                capture_output=True, text=True).stdout.strip()
        row = run_workflow(tree, cores, configfile)
    label = revision if revision == WORKTREE else f"{revision} ({commit})"
    return {"tree": label, **row}


def table(rows: Sequence[dict[str, Any]], rules: bool) -> str:
    """Markdown table of the runs (and of their rules, with ``rules``)."""
    lines = ["| tree | jobs | CPU (s) | wall (s) | mean load (1 min) | cores | job time (s) "
             "| idle core time (s) | critical path (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['tree']} | {r['jobs']} | {r['cpu_s']:.1f} | {r['wall_s']:.1f} | "
              f"{r['load']:.2f} | {r['cores']} | {r['job_s']:.0f} | {r['idle_core_s']:.0f} | "
              f"{r['critical_s']:.0f} |" for r in rows]
    lines += [f"\ncritical path of {r['tree']}: {' -> '.join(r['critical_path'])}"
              for r in rows]
    if rules:
        names = sorted({name for r in rows for name in r["rules"]})
        lines += ["", "| rule | " + " | ".join(f"{r['tree']}: jobs, wall s, CPU s (sampled)"
                                                for r in rows) + " |",
                  "|---|" + "---|" * len(rows)]
        for name in names:
            cells = []
            for r in rows:
                c = r["rules"].get(name)
                cells.append("-" if c is None else
                             f"{c['jobs']}, {c['wall_s']:.1f}, {c['cpu_s']:.1f}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--revisions", nargs="+", default=[WORKTREE],
                        help=f"git revisions to compare ('{WORKTREE}': this checkout)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--configfile", default=None,
                        help="a config (path in the tree's config/ copy); default: shipped")
    parser.add_argument("--parallel", action="store_true",
                        help="run the trees at the same time (same machine load)")
    parser.add_argument("--rules", action="store_true", help="also print per-rule costs")
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args(argv)
    if args.cores < 1:
        parser.error("--cores must be >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    if args.parallel:
        with ThreadPoolExecutor(len(args.revisions)) as pool:
            rows = list(pool.map(lambda r: measure(r, args.cores, args.configfile),
                                 args.revisions))
    else:
        rows = [measure(r, args.cores, args.configfile) for r in args.revisions]
    print(table(rows, args.rules))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
