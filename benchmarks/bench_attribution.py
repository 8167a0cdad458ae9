"""Time and peak memory of an attribution map on a long recording (issue 20).

    python benchmarks/bench_attribution.py                       # 1M steps x 200 neurons
    python benchmarks/bench_attribution.py --timesteps 100000 --json out.json

The map is averaged over every time step with ``aggregate="abs-mean"``, batch by batch,
so memory is the recording plus one batch of windows and Jacobians, whatever its
length. Peak RSS is the process's high-water mark (``resource.getrusage``); the
recording's own size and the RSS before the map are reported beside it so that the
map's extra memory can be read off, and CPU seconds beside wall-clock seconds (on a
shared machine the wall clock measures the other users). The encoder is freshly initialised: the cost
does not depend on the weights.

Measured 2026-12-02 on the project's 2-core CPU machine (one thread, shared with ~18
busy processes): 1M steps x 200 neurons, offset10-model, 8 dimensions, svd inverse:
2175 s wall (0.32 ms CPU per step at 50k steps, so about 5.3 CPU minutes); peak RSS
1.38 GB with the 0.76 GB recording (2.47 GB before the NaN check went chunked).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np


def rss_mb() -> float:
    """Current resident set size (MB), from /proc (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_seconds() -> float:
    """User + system CPU time of this process: a cost that a busy machine does not inflate."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """High-water mark of the resident set size (MB; ru_maxrss is KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timesteps", type=int, default=1_000_000)
    parser.add_argument("--neurons", type=int, default=200)
    parser.add_argument("--output-dimension", type=int, default=8)
    parser.add_argument("--model", default="offset10-model")
    parser.add_argument("--method", default="jacobian-based")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--inverse-methods", default="svd",
                        help="comma-separated pseudo-inverses (lsq,svd); the pipeline uses svd")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    import torch

    import cebra_pipe as cebra
    from cebra_pipe import attribution

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    neural = np.random.default_rng(0).standard_normal(
        (args.timesteps, args.neurons), dtype=np.float32)
    model = cebra.models.init(args.model, num_neurons=args.neurons, num_units=32,
                              num_output=args.output_dimension).to(args.device)
    before = rss_mb()
    start, cpu_start = time.perf_counter(), cpu_seconds()
    method = attribution.init(args.method, model=model, input_data=neural)
    result = method.compute_attribution_map(batch_size=args.batch_size, aggregate="abs-mean",
                                            inverse_methods=args.inverse_methods.split(","))
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    figures = {
        "timesteps": args.timesteps, "neurons": args.neurons,
        "output_dimension": args.output_dimension, "model": args.model, "method": args.method,
        "batch_size": args.batch_size, "threads": args.threads, "device": args.device,
        "inverse_methods": args.inverse_methods,
        "samples_explained": method.num_samples, "seconds": round(seconds, 1),
        "samples_per_second": round(method.num_samples / seconds),
        "cpu_seconds": round(cpu, 1),
        "cpu_ms_per_sample": round(1000 * cpu / method.num_samples, 3),
        "recording_mb": round(neural.nbytes / 2**20), "rss_before_map_mb": round(before),
        "peak_rss_mb": round(peak_rss_mb()),
        "map_shapes": {k: list(np.shape(v)) for k, v in result.items()},
        "inversion_seconds": {k: round(v, 1) for k, v in result.items()
                              if k.startswith("time_inversion")},
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
