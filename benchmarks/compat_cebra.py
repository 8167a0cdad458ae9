"""Model files between the reference ``cebra`` 0.6.1 and cebra_pipe, both ways.

The reference runs in its own virtual environment (cebra_pipe never imports it). The
script

1. fits small models with the reference and saves them with ``CEBRA.save`` (default
   ``backend="sklearn"``, and ``backend="torch"``), together with the reference's
   embedding of a fixed input;
2. loads each file with ``cebra_pipe.CEBRA.load`` (allow-listed reader, nothing in
   the file runs) and prints the largest absolute difference of the embeddings;
3. fits cebra_pipe models, writes them with ``cebra_pipe.compat.save_for_cebra``,
   loads them in the reference with ``cebra.CEBRA.load(..., weights_only=True)`` and
   prints the largest difference again.

``--write-fixtures tests/compat/fixtures`` stores the reference's files and expected
embeddings as the test fixtures (tests then need no reference)::

    python benchmarks/compat_cebra.py --install-reference /tmp/refenv
    python benchmarks/compat_cebra.py --reference-python /tmp/refenv/bin/python \\
        --write-fixtures tests/compat/fixtures
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from compare_reference import install_reference

TOLERANCE = 1e-5
# name -> how the reference fits and saves it. Small networks keep the fixtures tiny.
CASES = {
    "sklearn_offset10_continuous": dict(backend="sklearn", sessions=1, labels=("continuous",),
                                        model_architecture="offset10-model"),
    "torch_offset5_time": dict(backend="torch", sessions=1, labels=(),
                               model_architecture="offset5-model"),
    "sklearn_offset5_multisession": dict(backend="sklearn", sessions=2, labels=("continuous",),
                                         model_architecture="offset5-model",
                                         temperature_mode="auto"),
    "sklearn_offset10_hybrid": dict(backend="sklearn", sessions=1, labels=("continuous",),
                                    model_architecture="offset10-model", hybrid=True),
    "sklearn_offset20_discrete": dict(backend="sklearn", sessions=1, labels=("discrete",),
                                      model_architecture="offset20-model",
                                      distance="euclidean"),
    "sklearn_offset15_continuous": dict(backend="sklearn", sessions=1, labels=("continuous",),
                                        model_architecture="offset15-model"),
    "sklearn_offset36_more_dropout": dict(backend="sklearn", sessions=1, labels=("continuous",),
                                          model_architecture="offset36-model-more-dropout"),
    "sklearn_offset10_mse_tanh": dict(backend="sklearn", sessions=1, labels=("continuous",),
                                      model_architecture="offset10-model-mse-tanh",
                                      distance="euclidean"),
    # Every mode with both backends: time, behaviour, mixed labels, multi-session discrete.
    "sklearn_offset10_time": dict(backend="sklearn", sessions=1, labels=(),
                                  model_architecture="offset10-model"),
    # The reference's torch backend pickles the model class, which fails for the
    # registry-made offset10-model (PicklingError there); offset5-model pickles.
    "torch_offset5_continuous": dict(backend="torch", sessions=1, labels=("continuous",),
                                     model_architecture="offset5-model"),
    "torch_offset5_mixed": dict(backend="torch", sessions=1, labels=("continuous", "discrete"),
                                model_architecture="offset5-model"),
    "sklearn_offset5_multisession_discrete": dict(backend="sklearn", sessions=2,
                                                  labels=("discrete",),
                                                  model_architecture="offset5-model"),
}
SHARED = dict(max_iterations=20, batch_size=32, output_dimension=3, num_hidden_units=4,
              device="cpu")
NEURONS = (5, 4)  # per session

# Runs in the reference's python: fit, save, embed the fixed input.
_REFERENCE_SAVE = r"""
import json, sys, warnings
import numpy as np, cebra
cases, shared, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
warnings.simplefilter("ignore")
data = np.load(f"{out}/input.npz")
for name, case in cases.items():
    case = dict(case)
    backend, sessions, labels = case.pop("backend"), case.pop("sessions"), case.pop("labels")
    X = [data[f"neural{i}"] for i in range(sessions)]
    y = [data[key] for key in labels]
    model = cebra.CEBRA(**shared, **case)
    if sessions > 1:
        model.fit(X, *[[label] * sessions for label in y])
    else:
        model.fit(X[0], *y)
    model.save(f"{out}/{name}.pt", backend=backend)
    np.savez(f"{out}/{name}.npz", **{f"neural{i}": X[i] for i in range(sessions)},
             **{f"embedding{i}": model.transform(X[i], session_id=i if sessions > 1 else None)
                for i in range(sessions)})
"""

# Runs in the reference's python: load cebra_pipe's exports and embed.
_REFERENCE_LOAD = r"""
import json, sys
import numpy as np, cebra
for path in json.loads(sys.argv[1]):
    data = np.load(path + ".npz")
    model = cebra.CEBRA.load(path, weights_only=True)
    sessions = len([k for k in data.files if k.startswith("neural")])
    diff = max(float(np.abs(model.transform(data[f"neural{i}"],
                                            session_id=i if sessions > 1 else None)
                            - data[f"embedding{i}"]).max()) for i in range(sessions))
    print(json.dumps({"file": path, "max_abs_diff": diff}))
"""


def make_input(directory: Path, time: int = 100) -> None:
    """Fixed synthetic neural data per session and a 2-D continuous label."""
    rng = np.random.default_rng(0)
    position = rng.normal(size=(time, 2)).astype("float32")
    np.savez(directory / "input.npz", continuous=position,
             discrete=rng.integers(0, 3, time),
             **{f"neural{i}": rng.normal(size=(time, n)).astype("float32")
                for i, n in enumerate(NEURONS)})


def reference_to_cebra_pipe(python: str, directory: Path) -> dict[str, float]:
    """Save with the reference, load here; max |embedding difference| per case."""
    import cebra_pipe

    subprocess.run([python, "-c", _REFERENCE_SAVE, json.dumps(CASES), json.dumps(SHARED),
                    str(directory)], check=True)
    result = {}
    for name, case in CASES.items():
        model = cebra_pipe.CEBRA.load(directory / f"{name}.pt")
        data = np.load(directory / f"{name}.npz")
        result[name] = max(
            float(np.abs(model.transform(data[f"neural{i}"], session_id=(
                i if case["sessions"] > 1 else None)) - data[f"embedding{i}"]).max())
            for i in range(case["sessions"]))
    return result


def cebra_pipe_to_reference(python: str, directory: Path) -> dict[str, float]:
    """Fit here, export with ``save_for_cebra``, load in the reference."""
    import cebra_pipe
    from cebra_pipe.compat import save_for_cebra

    data = np.load(directory / "input.npz")
    paths = []
    for name, case in CASES.items():
        case = dict(case)
        sessions, labels = case.pop("sessions"), case.pop("labels")
        case.pop("backend")
        X = [data[f"neural{i}"] for i in range(sessions)]
        y = [data[key] for key in labels]
        model = cebra_pipe.CEBRA(**SHARED, **case, random_state=0)
        model.fit(X if sessions > 1 else X[0],
                  *([[label] * sessions for label in y] if sessions > 1 else y))
        path = directory / f"export_{name}.pt"
        save_for_cebra(model, path)
        np.savez(f"{path}.npz", **{f"neural{i}": X[i] for i in range(sessions)},
                 **{f"embedding{i}": model.transform(
                     X[i], session_id=i if sessions > 1 else None) for i in range(sessions)})
        paths.append(str(path))
    out = subprocess.run([python, "-c", _REFERENCE_LOAD, json.dumps(paths)], check=True,
                         capture_output=True, text=True).stdout
    return {Path(row["file"]).stem: row["max_abs_diff"]
            for row in map(json.loads, out.splitlines())}


def write_fixtures(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        for suffix in (".pt", ".npz"):
            shutil.copyfile(source / f"{name}{suffix}", target / f"{name}{suffix}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--reference-python", help="python of a venv with cebra 0.6.1")
    where.add_argument("--install-reference", type=Path, metavar="DIR",
                       help="create (or reuse) a venv with torch 2.13.0 and cebra 0.6.1")
    parser.add_argument("--write-fixtures", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    python = (install_reference(args.install_reference) if args.install_reference
              else args.reference_python)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        make_input(directory)
        report = {"cebra -> cebra_pipe": reference_to_cebra_pipe(python, directory),
                  "cebra_pipe -> cebra": cebra_pipe_to_reference(python, directory)}
        if args.write_fixtures:
            write_fixtures(directory, args.write_fixtures)
    for direction, rows in report.items():
        for name, diff in rows.items():
            verdict = "ok" if diff <= TOLERANCE else "MISMATCH"
            print(f"{direction:22s} {name:36s} max |diff| = {diff:.2e}  {verdict}")
    if any(d > TOLERANCE for rows in report.values() for d in rows.values()):
        sys.exit(1)
    return report


if __name__ == "__main__":
    main()
