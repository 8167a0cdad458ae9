"""cebra_pipe against the reference ``cebra`` 0.6.1, side by side in one run.

The reference lives in its own virtual environment (cebra_pipe never imports it or
depends on it). Every measurement runs in a fresh process of the library's own
python (``benchmarks/_worker.py``) on the same synthetic data, and prints:

* **steps**: ms per training step in each mode (time, continuous, discrete, mixed)
  at each recording length, with the ratio to the *floor* (forward + backward + Adam
  of the same network on ``3 x batch`` windows, no sampling) and to the reference.
  ``ratio_to_local_floor`` divides by the floor measured in the same process just
  before and after the row, which cancels the machine's slow spells;
* **label-dims**: ms per continuous step with labels of 1, 2, 3 (one continuous and
  two categorical columns), 8 and 20 dimensions at each length, against the
  time-contrastive step and the local floor of the same run;
* **multi-session**: 4 sessions, against the floor of the same total batch;
* **transform**: samples/s over a 100k-timestep recording;
* **memory**: peak resident memory of a 100k continuous fit plus transform;
* with ``--baseline REV``, the **steps** rows also time cebra_pipe as it was at git
  revision ``REV`` (its ``cebra_pipe/`` extracted to a temporary folder, run by this
  interpreter) in the same run: ``baseline_ms`` and ``ratio_to_baseline``, the ratio
  of the two rows' ms each divided by its own local floor (a slow spell that hits one
  process does not count as a regression);
* **full batch**, **seed ensemble** and **quality** (decoding error and
  consistency on a synthetic track and the real rat achilles), from
  ``bench_full_batch.py``, ``bench_ensemble.py`` and ``quality.py``.

Reproduce (``--quick``, the four core sections at 10k and 100k timesteps, finishes in
about 3 minutes on 2 idle cores; the full run takes about an hour, most of it the
5000-step quality fits)::

    python benchmarks/compare_reference.py --install-reference /tmp/refenv --quick
    python benchmarks/compare_reference.py --reference-python /tmp/refenv/bin/python \\
        --json benchmarks/out/compare.json --markdown benchmarks/out/compare.md

Without a reference, only cebra_pipe's columns are filled.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MODES = ("time", "continuous", "discrete", "mixed")
LAYOUTS = ("1", "2", "3cat", "8", "20")  # as in _worker.LAYOUTS (imports torch)


# ---------------------------------------------------------------------- processes

def install_reference(directory: Path) -> str:
    """A virtual environment with torch 2.13.0 and cebra 0.6.1 at ``directory``."""
    python = directory / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    probe = subprocess.run([str(python), "-c", "import cebra"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0",
                        "cebra==0.6.1"], check=True)
    return str(python)


def extract_revision(revision: str) -> str:
    """A temporary folder holding ``cebra_pipe/`` as it was at git ``revision``."""
    folder = Path(tempfile.mkdtemp(prefix="compare_baseline_"))
    archive = folder / "tree.tar"
    with archive.open("wb") as out:
        done = subprocess.run(["git", "archive", revision, "cebra_pipe"], cwd=REPO,
                              stdout=out, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        shutil.rmtree(folder)
        raise SystemExit(f"--baseline {revision}: git archive of cebra_pipe/ failed in "
                         f"{REPO}: {done.stderr.strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    archive.unlink()
    return str(folder)


def measure(python: str | None, library: str, kind: str, repo: str = str(REPO),
            **spec: Any) -> dict | None:
    """Run one worker measurement; ``None`` if that library is not available.

    ``repo`` is the folder cebra_pipe is imported from (an extracted revision for
    ``--baseline``). The worker's progress lines (stderr, indented) are echoed as they come; the rest
    of its stderr is kept for the error message if it fails.
    """
    if python is None:
        return None
    spec = {"library": library, "kind": kind, "repo": repo, **spec}
    with subprocess.Popen([python, str(HERE / "_worker.py"), json.dumps(spec)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"}) as worker:
        errors = []
        for line in worker.stderr:
            if line.startswith("    "):
                print(line, end="", file=sys.stderr, flush=True)
            else:
                errors.append(line)
        stdout = worker.stdout.read()
    if worker.returncode != 0:
        raise RuntimeError(f"{library} {kind} {spec} failed:\n{''.join(errors)[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def _settings(args, **spec: Any) -> dict:
    """A worker spec with the run's threads, clock and batch size."""
    return {"threads": args.threads, "batch": 512, "clock": args.clock, **spec}


def _both(args, kind: str, **spec: Any) -> tuple[dict | None, dict]:
    """(reference, cebra_pipe) results of one measurement, reference first."""
    spec = _settings(args, **spec)
    return (measure(args.reference_python, "reference", kind, **spec),
            measure(sys.executable, "cebra_pipe", kind, **spec))


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


# ------------------------------------------------------------------------ sections

def floor_ms(args, sessions: int = 1) -> tuple[float, float | None]:
    """Floor (reference network, or ours without a reference) and our network's."""
    spec = {"steps": 20 if args.quick else 40, "warmup": 5, "repeats": 2 if args.quick else 3,
            "sessions": sessions}
    ref, ours = _both(args, "floor", **spec)
    return (ref or ours)["ms"], ours["ms"]


def step_rows(args) -> list[dict]:
    """ms/step per mode and length, with ratios to the floor and the reference."""
    first = floor_ms(args)
    cases = [[mode, length] for mode in args.modes for length in args.lengths]
    spec = {"cases": cases, "steps": args.steps, "warmup": args.warmup,
            "repeats": args.repeats, "budget_s": args.budget}
    ref, ours = _both(args, "steps", **spec)
    base = args.baseline and measure(sys.executable, "cebra_pipe", "steps",
                                     repo=args.baseline_root, **_settings(args, **spec))
    rows = []
    for index, (mode, length) in enumerate(cases):
        local = ours["rows"][index]["local_floor_ms"]
        rows.append({"benchmark": "step", "mode": mode, "timesteps": length,
                     "reference_ms": ref and ref["rows"][index]["ms"],
                     "reference_local_floor_ms": ref and ref["rows"][index]["local_floor_ms"],
                     "cebra_pipe_ms": ours["rows"][index]["ms"], "local_floor_ms": local,
                     "ratio_to_local_floor": ours["rows"][index]["ms"] / local})
        if base:
            then = base["rows"][index]
            rows[-1].update(baseline=args.baseline, baseline_ms=then["ms"],
                            baseline_local_floor_ms=then["local_floor_ms"],
                            ratio_to_baseline=rows[-1]["ratio_to_local_floor"]
                            / (then["ms"] / then["local_floor_ms"]))
        _progress(rows[-1])
    # The floor again at the end: the machine may have been busier at the start.
    last = first if args.quick else floor_ms(args)
    floor, ours_floor = min(first[0], last[0]), min(first[1], last[1])
    for row in rows:
        row.update(floor_ms=floor, our_network_floor_ms=ours_floor,
                   ratio_to_floor=row["cebra_pipe_ms"] / floor,
                   speedup=_ratio(row["reference_ms"], row["cebra_pipe_ms"]))
    return rows


def label_dim_rows(args) -> list[dict]:
    """ms/step with continuous labels of each ``--label-dims`` layout at each length.

    Each length also times the time-contrastive step (same network, no label search)
    in the same process; ``ratio_to_time`` divides by it. The reference skips cases
    predicted above ``--reference-max-step-s`` from its step at a shorter length.
    """
    lengths = sorted(args.lengths)
    cases = [case for length in lengths for case in
             [["time", length]] + [["continuous", length, dims] for dims in args.label_dims]]
    spec = _settings(args, cases=cases, steps=args.steps, warmup=args.warmup,
                     repeats=args.repeats, budget_s=args.budget)
    ref = measure(args.reference_python, "reference", "steps",
                  **{**spec, "max_step_s": args.reference_max_step_s})
    ours = measure(sys.executable, "cebra_pipe", "steps", **spec)
    time_ms = {case[1]: ours["rows"][i]["ms"] for i, case in enumerate(cases)
               if case[0] == "time"}
    rows = []
    for index, (mode, length, *dims) in enumerate(cases):
        if mode == "time":
            continue
        mine, theirs = ours["rows"][index], ref and ref["rows"][index]
        rows.append({"benchmark": "label-dims", "label_dims": dims[0], "timesteps": length,
                     "reference_ms": theirs and theirs["ms"],
                     "reference_skipped": bool(theirs) and theirs["ms"] is None,
                     "cebra_pipe_ms": mine["ms"], "time_ms": time_ms[length],
                     "ratio_to_time": mine["ms"] / time_ms[length],
                     "local_floor_ms": mine["local_floor_ms"],
                     "ratio_to_local_floor": mine["ms"] / mine["local_floor_ms"],
                     "speedup": _ratio(theirs and theirs["ms"], mine["ms"])})
        _progress(rows[-1])
    return rows


def multi_session_rows(args) -> list[dict]:
    """4 sessions of ``lengths[0]`` timesteps against the floor of 4 networks."""
    floor, _ = floor_ms(args, sessions=4)
    ref, ours = _both(args, "step", mode="continuous", length=args.lengths[0], sessions=4,
                      steps=args.steps, warmup=args.warmup, repeats=args.repeats,
                      budget_s=args.budget)
    row = {"benchmark": "multi-session", "mode": "continuous x4", "timesteps": args.lengths[0],
           "reference_ms": ref and ref["ms"], "cebra_pipe_ms": ours["ms"], "floor_ms": floor,
           "ratio_to_floor": ours["ms"] / floor,
           "speedup": _ratio(ref and ref["ms"], ours["ms"])}
    _progress(row)
    return [row]


def transform_rows(args) -> list[dict]:
    """Samples/s of ``transform`` on a ``--long`` (100k) recording."""
    ref, ours = _both(args, "transform", length=args.long, repeats=3)
    row = {"benchmark": "transform", "timesteps": args.long,
           "reference_samples_per_s": ref and ref["samples_per_s"],
           "cebra_pipe_samples_per_s": ours["samples_per_s"],
           "speedup": _ratio(ours["samples_per_s"], ref and ref["samples_per_s"])}
    _progress(row)
    return [row]


def memory_rows(args) -> list[dict]:
    """Peak RSS of a ``--long`` (100k) continuous fit + transform."""
    ref, ours = _both(args, "memory", length=args.long, steps=20 if args.quick else 200)
    row = {"benchmark": "memory", "timesteps": args.long,
           "reference_peak_mb": ref and ref["peak_mb"], "cebra_pipe_peak_mb": ours["peak_mb"],
           "reference_import_mb": ref and ref["import_mb"],
           "cebra_pipe_import_mb": ours["import_mb"],
           "ratio": _ratio(ours["peak_mb"], ref and ref["peak_mb"])}
    _progress(row)
    return [row]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_rows(name: str):
    """Rows of a companion benchmark script's ``run(reference_python, quick)``."""
    def rows(args) -> list[dict]:
        result = _module(name).run(args.reference_python, args.quick)
        for row in result:
            _progress(row)
        return result
    return rows


SECTIONS = {"steps": step_rows, "label-dims": label_dim_rows,
            "multi-session": multi_session_rows,
            "transform": transform_rows, "memory": memory_rows,
            "full-batch": module_rows("bench_full_batch"),
            "ensemble": module_rows("bench_ensemble"), "quality": module_rows("quality")}


# -------------------------------------------------------------------------- output

def _progress(row: dict) -> None:
    print("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in row.items()), file=sys.stderr,
          flush=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(_fmt, value))
    return str(value)


def markdown(rows: list[dict]) -> str:
    """One markdown table per benchmark, columns in first-seen order."""
    out = []
    for name in dict.fromkeys(row["benchmark"] for row in rows):
        group = [row for row in rows if row["benchmark"] == name]
        columns = [c for c in dict.fromkeys(k for row in group for k in row) if c != "benchmark"]
        out += [f"**{name}**", "", "| " + " | ".join(columns) + " |",
                "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in group]
        out.append("")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--reference-python", help="python of a venv with cebra==0.6.1")
    where.add_argument("--install-reference", type=Path, metavar="DIR",
                       help="create (or reuse) a venv with cebra==0.6.1 at DIR")
    parser.add_argument("--baseline", metavar="REV",
                        help="steps: also time cebra_pipe at this git revision, same run")
    parser.add_argument("--quick", action="store_true",
                        help="10k and 100k timesteps, few steps, no companion scripts unless "
                             "named in --sections (then in their quick mode); < 3 min")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--lengths", type=int, nargs="+")
    parser.add_argument("--label-dims", nargs="+", choices=LAYOUTS, default=list(LAYOUTS),
                        help="continuous label layouts of the label-dims sweep: 1-D position, "
                             "2/8/20-D random walks, 3cat = [position, right, left]")
    parser.add_argument("--reference-max-step-s", type=float, default=60.0,
                        help="label-dims: skip reference cases predicted slower than this")
    parser.add_argument("--steps", type=int, help="steps per timed fit (upper bound)")
    parser.add_argument("--warmup", type=int, help="untimed steps before the timed ones")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--budget", type=float, help="seconds per timed fit (shrinks steps)")
    parser.add_argument("--long", type=int, default=100_000,
                        help="timesteps of the transform and memory benchmarks")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="time the core sections by wall clock or by the process's CPU "
                             "time (with --threads 1, far less inflated on a busy machine)")
    parser.add_argument("--json", type=Path, help="write all rows as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the tables as markdown here")
    return parser


def main(argv: list[str] | None = None) -> list[dict]:
    args = _parser().parse_args(argv)
    if args.install_reference:
        args.reference_python = install_reference(args.install_reference)
    quick_sections = ["steps", "multi-session", "transform", "memory"]
    args.sections = args.sections or (quick_sections if args.quick else list(SECTIONS))
    args.baseline_root = args.baseline and extract_revision(args.baseline)
    args.lengths = args.lengths or ([10_000, 100_000] if args.quick
                                    else [10_000, 100_000, 1_000_000])
    args.steps = args.steps or (20 if args.quick else 300)
    args.warmup = args.warmup or (3 if args.quick else 5)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.budget = args.budget or (0.5 if args.quick else 4.0)
    rows, start = [], time.perf_counter()
    try:
        for name in args.sections:
            print(f"[{time.perf_counter() - start:6.0f} s] {name}", file=sys.stderr,
                  flush=True)
            rows += SECTIONS[name](args)
    finally:
        if args.baseline_root:
            shutil.rmtree(args.baseline_root, ignore_errors=True)
    table = markdown(rows)
    print(table)
    print(f"total {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    return rows


if __name__ == "__main__":
    main()
