"""Side-by-side step time of cebra_pipe and the reference `cebra` package.

The reference lives in its own virtual environment (cebra_pipe never imports it);
this script runs the same estimator call in both, one process each, on the same
synthetic data, and prints ms/step and the ratio::

    python -m venv /tmp/refenv && /tmp/refenv/bin/pip install torch==2.13.0 cebra==0.6.1
    python benchmarks/compare_reference.py --reference-python /tmp/refenv/bin/python

Timing excludes the first fit (imports, thread-pool start-up): each measurement
is ``(fit(steps) - fit(warmup)) / (steps - warmup)``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

_WORKER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import torch
    lib, mode, length, steps, warmup = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    if lib == "reference":
        import cebra
    else:
        import cebra_pipe as cebra
    torch.set_num_threads(int(sys.argv[6]))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(length, 120)).astype("float32")
    pos = (np.sin(np.arange(length) / 200.0) + 1) * 0.8
    right = (np.cos(np.arange(length) / 200.0) > 0).astype("float32")
    labels = {"time": (), "continuous": (np.stack([pos, right, 1 - right], 1).astype("float32"),),
              "discrete": ((pos * 10).astype(int),)}[mode]

    def fit(n):
        model = cebra.CEBRA(model_architecture="offset10-model", batch_size=512,
                            max_iterations=n, time_offsets=10, device="cpu")
        start = time.perf_counter()
        model.fit(X, *labels)
        return time.perf_counter() - start

    fit(warmup)
    short, long = fit(warmup), fit(steps)
    print(json.dumps({"ms_per_step": 1000 * (long - short) / (steps - warmup)}))
""")


def measure(python: str, lib: str, mode: str, length: int, steps: int, warmup: int,
            threads: int) -> float:
    """ms/step of one implementation, measured in a fresh process."""
    out = subprocess.run([python, "-c", _WORKER, lib, mode, str(length), str(steps),
                          str(warmup), str(threads)], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["ms_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-python", required=True,
                        help="python of an environment with cebra==0.6.1 installed")
    parser.add_argument("--lengths", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--modes", nargs="+", default=["time", "continuous", "discrete"])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the table as JSON here")
    args = parser.parse_args()
    rows = []
    print(f"{'mode':<11}{'timesteps':>10}{'reference ms':>14}{'cebra_pipe ms':>15}{'speed-up':>10}")
    for mode in args.modes:
        for length in args.lengths:
            ref = measure(args.reference_python, "reference", mode, length, args.steps,
                          args.warmup, args.threads)
            ours = measure(sys.executable, "cebra_pipe", mode, length, args.steps,
                           args.warmup, args.threads)
            rows.append({"mode": mode, "timesteps": length, "reference_ms": ref,
                         "cebra_pipe_ms": ours, "speedup": ref / ours})
            print(f"{mode:<11}{length:>10}{ref:>14.1f}{ours:>15.1f}{ref / ours:>9.1f}x",
                  flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
