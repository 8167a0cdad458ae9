"""Adding an animal to a trained cohort on the real rats (``fit(adapt=True)``).

The cohort is achilles' 120 units split at random into two 60-unit sessions (two
recordings of the same behaviour, the only labelled rats with a matching label
layout besides buddy); buddy (48 units, another rat) is added with ``fit(adapt=True,
session_id=2)``. For the adapted input layer and for the unadapted one (0 adapt
steps: the chance level of the frozen encoder) it reports

* the consistency R² (:func:`cebra_pipe.sklearn.adapt.cohort_consistency`, 40 bins
  of position) between buddy's embedding and each cohort session's;
* cross-animal decoding: a kNN regressor fitted on the cohort's embeddings and
  positions only, predicting buddy's position (median absolute error, cm), beside
  the chance error of a random time point's position.

Usage::

    python benchmarks/bench_adapt.py --steps 1500 --seeds 0 [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsRegressor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import cebra_pipe as cebra  # noqa: E402
from cebra_pipe.sklearn.adapt import cohort_consistency  # noqa: E402

REAL = HERE.parent.parent / "shared" / "data" / "real"


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Neural ``(time, units)`` and labels ``(time, 3)`` ``[position m, right, left]``."""
    data = np.load(REAL / f"rat_hippocampus_{name}" / f"rat_hippocampus_{name}.npz")
    return data["neural"].astype(np.float32), data["continuous"].astype(np.float32)


def quality(model, neural: np.ndarray, labels: np.ndarray, session_id: int) -> dict:
    """Consistency with each cohort session and cross-animal decoding error (cm)."""
    embedding = model.transform(neural, session_id=session_id)
    anchors = model.cohort_anchors_
    decoder = KNeighborsRegressor(n_neighbors=25).fit(
        np.concatenate(anchors.embeddings), np.concatenate(anchors.continuous)[:, 0])
    error = np.median(np.abs(decoder.predict(embedding) - labels[:, 0])) * 100
    consistency = cohort_consistency(embedding, labels, anchors, num_bins=40)
    return {"consistency_r2": {k: round(v, 3) for k, v in consistency.items()},
            "cross_animal_median_error_cm": round(float(error), 2)}


def run(steps: int, adapt_steps: int, seed: int) -> dict:
    achilles, position = load("achilles")
    buddy, buddy_labels = load("buddy")
    units = np.random.default_rng(0).permutation(achilles.shape[1])
    half = len(units) // 2
    model = cebra.CEBRA(model_architecture="offset10-model", batch_size=512,
                        max_iterations=steps, max_adapt_iterations=adapt_steps,
                        output_dimension=3, time_offsets=10, learning_rate=3e-4,
                        device="cuda_if_available", random_state=seed)
    start = time.perf_counter()
    model.fit([achilles[:, units[:half]], achilles[:, units[half:]]], [position, position])
    fit_s = time.perf_counter() - start
    unadapted = copy.deepcopy(model).set_params(max_adapt_iterations=0)
    unadapted.fit(buddy, buddy_labels, adapt=True, session_id=2)
    start = time.perf_counter()
    model.fit(buddy, buddy_labels, adapt=True, session_id=2)
    adapt_s = time.perf_counter() - start
    chance = np.median(np.abs(np.random.default_rng(0).permutation(buddy_labels[:, 0])
                              - buddy_labels[:, 0])) * 100
    return {"seed": seed, "fit_s": round(fit_s, 1), "adapt_s": round(adapt_s, 1),
            "adapted": quality(model, buddy, buddy_labels, 2),
            "unadapted": quality(unadapted, buddy, buddy_labels, 2),
            "chance_median_error_cm": round(float(chance), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="cohort training steps")
    parser.add_argument("--adapt-steps", type=int, default=500)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = []
    for seed in args.seeds:
        results.append(run(args.steps, args.adapt_steps, seed))
        print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
