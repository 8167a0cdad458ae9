"""Time of the nearest-label search alone: build, and 512 ``time_delta`` queries.

Labels are the pose-like random walks of the side-by-side benchmark
(``_worker.walk_labels``); targets are ``label[ref] + label[t + 10] - label[t]``, as
the ``time_delta`` sampler makes them. Reports the build time and the best and median
query time over ``--repeats`` batches (each with new targets), and the best CPU time
(on one thread, what a busy machine inflates least), for

* ``new``: :class:`cebra_pipe.data.neighbors.NearestNeighbors` as it chooses;
* ``baseline``: the same class from ``cebra_pipe/data/neighbors.py`` at git revision
  ``--baseline`` (e.g. the grid hierarchy it replaced), if given;
* ``kdtree`` / ``blocked`` with ``--crossover``: each multi-dimensional search
  forced (the blocked one is the accelerators'), to check which is faster on the
  CPU (on one thread the k-d tree is, from 70 points on).

Usage::

    python benchmarks/bench_neighbors.py --dims 8 20 --lengths 50000 200000 1000000 \\
        --baseline 2519597 [--crossover] [--threads 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _worker import walk_labels  # noqa: E402

from cebra_pipe.data import neighbors  # noqa: E402


def baseline_module(revision: str):
    """``cebra_pipe/data/neighbors.py`` at a git ``revision``, imported on its own."""
    source = subprocess.run(["git", "show", f"{revision}:cebra_pipe/data/neighbors.py"],
                            cwd=HERE.parent, check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "neighbors_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("neighbors_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def targets(labels: torch.Tensor, batches: int, batch: int = 512, offset: int = 10,
            seed: int = 0) -> list[torch.Tensor]:
    """``batches`` of ``time_delta`` targets ``(batch, d)``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        ref = torch.randint(0, len(labels), (batch,), generator=gen)
        t = torch.randint(0, len(labels) - offset, (batch,), generator=gen)
        out.append(labels[ref] + labels[t + offset] - labels[t])
    return out


def measure(cls, labels: torch.Tensor, batches: list[torch.Tensor],
            budget_s: float = 10.0) -> dict:
    """Build seconds and query ms (best and median) of ``cls(labels, generator)``,
    over ``batches`` or as many of them (at least 3) as fit in ``budget_s``."""
    start = time.perf_counter()
    index = cls(labels, torch.Generator().manual_seed(0))
    build_s = time.perf_counter() - start
    index.query(batches[0])  # first-call costs
    times, cpu_times = [], []
    for batch in batches:
        start, cpu_start = time.perf_counter(), time.process_time()
        index.query(batch)
        cpu_times.append(1000 * (time.process_time() - cpu_start))
        times.append(1000 * (time.perf_counter() - start))
        if len(times) >= 3 and sum(times) > 1000 * budget_s:
            break
    return {"build_s": build_s, "query_ms": min(times), "median_ms": statistics.median(times),
            "query_cpu_ms": min(cpu_times), "structure": getattr(index, "structure", "grid/scan")}


def _forced(structure: str):
    """``NearestNeighbors`` with ``structure`` for several continuous columns."""
    def build(labels: torch.Tensor, generator: torch.Generator):
        choose = neighbors.choose_structure
        neighbors.choose_structure = lambda dim, device: "sorted" if dim == 1 else structure
        try:
            return neighbors.NearestNeighbors(labels, generator)
        finally:
            neighbors.choose_structure = choose
    return build


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 20])
    parser.add_argument("--lengths", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--baseline", help="git revision of neighbors.py to compare with")
    parser.add_argument("--crossover", action="store_true",
                        help="also time the k-d tree and the blocked search forced")
    parser.add_argument("--repeats", type=int, default=20, help="query batches timed")
    parser.add_argument("--budget", type=float, default=10.0,
                        help="seconds of queries per variant (at least 3 batches)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = {"new": neighbors.NearestNeighbors}
    if args.baseline:
        variants["baseline"] = baseline_module(args.baseline).NearestNeighbors
    if args.crossover:
        variants.update(kdtree=_forced("kdtree"), blocked=_forced("blocked"))
    rows = []
    for dims in args.dims:
        for length in args.lengths:
            labels = torch.from_numpy(walk_labels(length, dims))
            batches = targets(labels, args.repeats)
            for name, cls in variants.items():
                row = {"dims": dims, "length": length, "variant": name,
                       **measure(cls, labels, batches, args.budget)}
                rows.append(row)
                print(f"{dims:>3}-D {length:>8} {name:<9} {row['structure']:<9} build "
                      f"{row['build_s']:7.2f} s  query {row['query_ms']:8.2f} ms "
                      f"(median {row['median_ms']:.2f}, CPU {row['query_cpu_ms']:.2f})",
                      flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
