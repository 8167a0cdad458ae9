"""One measurement in a fresh process, for cebra_pipe or the reference ``cebra``.

Run by :mod:`benchmarks.compare_reference` as ``python _worker.py '<json spec>'``
with either library's python; prints one JSON object on its last line. It imports
only the library named in the spec, so the reference never enters cebra_pipe's
process (and vice versa). Kinds:

* ``floor``: forward + backward + Adam of the library's own network on
  ``3 x batch`` windows (``sessions`` networks for multi-session), no sampling.
* ``step``: ms per training step of ``CEBRA.fit`` in one mode, as
  ``(fit(steps) - fit(warmup)) / (steps - warmup)`` so start-up costs cancel.
* ``steps``: the same for a list of ``cases`` ``[mode, length(, layout)]`` in one
  process (the reference takes seconds to import), with a progress line per case on
  stderr; ``layout`` picks the continuous labels (:data:`LAYOUTS`).
* ``transform``: samples/s of ``CEBRA.transform`` on the whole recording.
* ``memory``: peak resident memory of a continuous fit followed by a transform.
"""

from __future__ import annotations

import functools
import json
import resource
import sys
import time

import numpy as np
import torch

NEURONS = 120
# Seconds for every timing; ``"clock": "cpu"`` in the spec switches to the process's
# CPU time, which on one thread a busy machine inflates far less than wall time.
CLOCK = time.perf_counter


def _library(spec: dict):
    if spec["library"] == "reference":
        import cebra
    else:
        sys.path.insert(0, spec["repo"])
        import cebra_pipe as cebra
    return cebra


@functools.lru_cache(maxsize=4)
def recording(length: int, seed: int = 0, neurons: int = NEURONS) -> dict:
    """Random activity ``(length, neurons)`` with a slow position and a direction.

    Returns ``neural``, ``continuous (length, 3)`` = [position, right, left] and
    ``discrete (length,)`` (10 position bins).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    position = (np.sin(t / 200.0 + seed) + 1) * 0.8
    right = (np.cos(t / 200.0 + seed) > 0).astype("float32")
    return {"neural": rng.normal(size=(length, neurons)).astype("float32"),
            "continuous": np.stack([position, right, 1 - right], 1).astype("float32"),
            "discrete": np.minimum((position * 6.25).astype(int), 9)}


LAYOUTS = ("1", "2", "3cat", "8", "20")


@functools.lru_cache(maxsize=2)
def walk_labels(length: int, dims: int, seed: int = 0) -> np.ndarray:
    """Pose-like continuous labels ``(length, dims)`` float32 in the unit box.

    A random walk with smooth velocity (25-sample moving average), folded back into
    ``[0, 1]`` so that trajectories revisit places, like keypoints in an arena.
    """
    rng = np.random.default_rng(seed + 1000 * dims)
    noise = np.cumsum(rng.normal(size=(length + 25, dims)) * 0.01, 0)
    walk = np.cumsum(noise[25:] - noise[:-25], 0) / 25
    folded = np.remainder(walk, 2.0)
    return np.where(folded > 1, 2 - folded, folded).astype("float32")


def continuous_labels(data: dict, layout: str = "3cat", seed: int = 0) -> np.ndarray:
    """Continuous labels of one ``LAYOUTS`` entry: ``"3cat"`` is ``[position, right,
    left]`` (one continuous and two categorical columns), ``"1"`` the position alone,
    a number of dimensions otherwise :func:`walk_labels`."""
    if layout == "3cat":
        return data["continuous"]
    if layout == "1":
        return data["continuous"][:, :1]
    return walk_labels(len(data["neural"]), int(layout), seed)


def labels_for(mode: str, data: dict, layout: str = "3cat") -> tuple:
    """The label arguments of ``fit`` in ``mode``."""
    if mode == "time":
        return ()
    if mode == "discrete":
        return (data["discrete"],)
    continuous = continuous_labels(data, layout)
    return (continuous,) if mode == "continuous" else (continuous, data["discrete"])


def _estimator(cebra, mode: str, steps: int, spec: dict):
    return cebra.CEBRA(model_architecture="offset10-model", batch_size=spec["batch"],
                       max_iterations=steps, time_offsets=10, device="cpu",
                       conditional="time" if mode == "time" else "time_delta",
                       learning_rate=3e-4, output_dimension=8, num_hidden_units=32,
                       verbose=False)


def _fit_seconds(cebra, spec: dict, steps: int) -> float:
    mode, sessions = spec["mode"], spec.get("sessions", 1)
    data = [recording(spec["length"], seed) for seed in range(sessions)]
    X = [d["neural"] for d in data] if sessions > 1 else data[0]["neural"]
    layout = spec.get("layout", "3cat")
    y = labels_for(mode, data[0], layout) if sessions == 1 else \
        tuple([labels_for(mode, d, layout)[k] for d in data]
              for k in range(len(labels_for(mode, data[0], layout))))
    model = _estimator(cebra, mode, steps, spec)
    start = CLOCK()
    model.fit(X, *y)
    return CLOCK() - start


def step(cebra, spec: dict) -> dict:
    """ms/step of ``fit`` in ``spec['mode']`` (best of ``repeats``).

    The measured steps shrink (never below 5) so that one measurement takes about
    ``budget_s``: the reference needs seconds per step at 1M timesteps. The step time
    that sets their number comes from a 5-step difference of two fits, as the
    start-up of a fit (index building, data checks) would inflate a plain average.
    """
    warmup = spec["warmup"]
    short = _fit_seconds(cebra, spec, warmup)
    per_step = max(1e-4, (_fit_seconds(cebra, spec, warmup + 5) - short) / 5)
    if 5 * per_step > spec["budget_s"]:
        # seconds per step (the reference at 1M timesteps): machine noise is small
        # against that, and more repeats would take many minutes
        return {"ms": 1000 * per_step, "all_ms": [1000 * per_step], "measured_steps": 5}
    measured = int(max(5, min(spec["steps"] - warmup, spec["budget_s"] / per_step)))
    times = []
    for _ in range(spec["repeats"]):
        short = _fit_seconds(cebra, spec, warmup)
        long = _fit_seconds(cebra, spec, warmup + measured)
        times.append(1000 * (long - short) / measured)
    return {"ms": min(times), "all_ms": times, "measured_steps": measured}


def steps(cebra, spec: dict) -> dict:
    """:func:`step` for each ``[mode, length]`` or ``[mode, length, layout]`` of
    ``spec['cases']``.

    Each row also gets ``local_floor_ms``: the :func:`floor` measured right before
    and right after it (the lower of the two). This machine has slow spells of tens
    of seconds, in which every step is up to 50 % slower; a floor taken minutes
    earlier would blame them on the sampler. With ``max_step_s``, a case whose step
    would take longer (predicted linearly in length from the same mode and layout at
    a shorter length: the reference's search is O(length) per step) is skipped
    and gets ``ms: None``.
    """
    quick_floor = {**spec, "steps": 30, "warmup": 3, "repeats": 2}
    rows, before = [], floor(cebra, quick_floor)["ms"]
    for mode, length, *layout in spec["cases"]:
        layout = layout[0] if layout else "3cat"
        predicted = _predicted_ms(rows, mode, length, layout)
        if spec.get("max_step_s") and predicted > 1000 * spec["max_step_s"]:
            rows.append({"mode": mode, "length": length, "layout": layout, "ms": None,
                         "predicted_ms": predicted, "local_floor_ms": before})
            print(f"    {spec['library']} {mode} {layout} {length}: skipped "
                  f"(~{predicted / 1000:.0f} s/step)", file=sys.stderr, flush=True)
            continue
        row = step(cebra, {**spec, "mode": mode, "length": length, "layout": layout})
        after = floor(cebra, quick_floor)["ms"]
        rows.append({"mode": mode, "length": length, "layout": layout, **row,
                     "local_floor_ms": min(before, after)})
        before = after
        print(f"    {spec['library']} {mode} {layout} {length}: {row['ms']:.1f} ms "
              f"(floor {rows[-1]['local_floor_ms']:.1f})", file=sys.stderr, flush=True)
    return {"rows": rows}


def _predicted_ms(rows: list[dict], mode: str, length: int, layout: str) -> float:
    """Step time at ``length`` scaled from the longest shorter measured row (or 0)."""
    shorter = [r for r in rows if r["mode"] == mode and r["layout"] == layout
               and r["ms"] is not None and r["length"] < length]
    if not shorter:
        return 0.0
    longest = max(shorter, key=lambda r: r["length"])
    return longest["ms"] * length / longest["length"]


def _infonce(emb: torch.Tensor, batch: int) -> torch.Tensor:
    ref, pos, neg = emb[:batch], emb[batch:2 * batch], emb[2 * batch:]
    return -(ref * pos).sum(1).mean() + torch.logsumexp(ref @ neg.T, 1).mean()


def floor(cebra, spec: dict) -> dict:
    """ms of forward + backward + Adam on fixed windows: no sampling, no gathering."""
    sessions, batch = spec.get("sessions", 1), spec["batch"]
    nets = [cebra.models.init("offset10-model", NEURONS, 32, 8) for _ in range(sessions)]
    params = [p for net in nets for p in net.parameters()]
    optimizer = torch.optim.Adam(params, lr=3e-4)
    windows = [torch.randn(3 * batch, NEURONS, 10) for _ in nets]

    def one_step() -> None:
        optimizer.zero_grad()
        emb = [net(x) for net, x in zip(nets, windows)]
        ref = torch.cat([e[:batch] for e in emb])
        pos = torch.cat([e[batch:2 * batch] for e in emb])
        neg = torch.cat([e[2 * batch:] for e in emb])
        _infonce(torch.cat([ref, pos, neg]), len(ref)).backward()
        optimizer.step()

    for _ in range(spec["warmup"]):
        one_step()
    times = []
    for _ in range(spec["repeats"]):
        start = CLOCK()
        for _ in range(spec["steps"]):
            one_step()
        times.append(1000 * (CLOCK() - start) / spec["steps"])
    return {"ms": min(times), "all_ms": times}


def transform(cebra, spec: dict) -> dict:
    """Samples/s of ``transform`` over a ``length`` recording (best of ``repeats``)."""
    data = recording(spec["length"])
    model = _estimator(cebra, "continuous", 5, spec).fit(data["neural"], data["continuous"])
    model.transform(data["neural"][:1000])
    times = []
    for _ in range(spec["repeats"]):
        start = CLOCK()
        out = model.transform(data["neural"])
        times.append(CLOCK() - start)
    assert out.shape == (spec["length"], 8), out.shape
    return {"samples_per_s": spec["length"] / min(times), "seconds": min(times)}


def memory(cebra, spec: dict) -> dict:
    """Peak RSS (MB) of a continuous fit plus transform, and of the imports alone."""
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    data = recording(spec["length"])
    model = _estimator(cebra, "continuous", spec["steps"], spec)
    model.fit(data["neural"], data["continuous"])
    model.transform(data["neural"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_mb": peak, "import_mb": baseline}


def main() -> None:
    global CLOCK
    spec = json.loads(sys.argv[1])
    if spec.get("clock") == "cpu":
        CLOCK = time.process_time
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    cebra = _library(spec)
    result = {"floor": floor, "step": step, "steps": steps, "transform": transform,
              "memory": memory}[spec["kind"]](cebra, spec)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
