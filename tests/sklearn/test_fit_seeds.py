"""Tests of ``fit_seeds`` / ``fit_ensemble``: each seed of an ensemble is the estimator a
solo ``CEBRA(random_state=seed).fit`` gives (weights, loss history, save/load), checkpoints
resume, bad arguments are refused; and ``train-single --ensemble on`` writes the same
outputs as sequential training, also after being killed and resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import cebra_pipe
from cebra_pipe import CEBRA
from cebra_pipe.sklearn.ensemble import fit_ensemble, fit_seeds
from cebra_pipe.solver import Solver

RNG = np.random.default_rng(0)
X = RNG.normal(size=(700, 7)).astype(np.float32)
POSITION = np.cumsum(RNG.normal(0, 0.05, (700, 1)), 0).astype(np.float32)
DISCRETE = (np.arange(700) // 50 % 3).astype(np.int64)
PARAMS = {"model_architecture": "offset10-model", "batch_size": 64, "max_iterations": 30,
          "time_offsets": 5, "output_dimension": 3, "num_hidden_units": 16,
          "temperature_mode": "auto", "learning_rate": 1e-3, "device": "cpu"}


def _assert_same_estimator(a: CEBRA, b: CEBRA, exact: bool = True) -> None:
    sa, sb = a.state_dict_, b.state_dict_
    for name, value in sa["model"].items():
        if exact:
            assert torch.equal(value, sb["model"][name]), name
        else:
            torch.testing.assert_close(value, sb["model"][name], rtol=0, atol=1e-4)
    if exact:
        assert torch.equal(sa["loss"], sb["loss"])
        assert all(torch.equal(sa["log"][k], sb["log"][k]) for k in sa["log"])
        np.testing.assert_array_equal(a.transform(X if a.num_sessions_ is None else X[:, :6],
                                                  **({} if a.num_sessions_ is None
                                                     else {"session_id": 0})),
                                      b.transform(X if b.num_sessions_ is None else X[:, :6],
                                                  **({} if b.num_sessions_ is None
                                                     else {"session_id": 0})))
    else:
        torch.testing.assert_close(sa["loss"], sb["loss"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(a.transform(X), b.transform(X), rtol=0, atol=5e-5)
    for attr in ("n_features_in_", "num_sessions_", "label_kind_", "num_negatives_", "offset_",
                 "_fit_calls"):
        assert getattr(a, attr) == getattr(b, attr), attr
    assert a.get_params() == b.get_params()


@pytest.mark.parametrize("labels, extra", [
    ((POSITION,), {}),
    ((), {}),
    ((DISCRETE,), {}),
    ((POSITION, DISCRETE), {}),
    ((POSITION,), {"hybrid": True}),
    ((POSITION,), {"batch_size": None, "max_iterations": 5}),
    ((POSITION,), {"distance": "euclidean", "model_architecture": "offset10-model-mse",
                   "temperature_mode": "constant"}),
])
def test_each_seed_equals_its_solo_fit(labels, extra):
    params = {**PARAMS, **extra}
    fitted = fit_seeds(params, X, *labels, seeds=[3, 0, 7])
    assert [m.random_state for m in fitted] == [3, 0, 7]
    for model in fitted:
        _assert_same_estimator(model, CEBRA(**params, random_state=model.random_state)
                               .fit(X, *labels))


def test_vmap_backend_equals_solo_fits_to_float_tolerance():
    fitted = fit_seeds(PARAMS, X, POSITION, seeds=[0, 1], backend="vmap")
    for model in fitted:
        _assert_same_estimator(model, CEBRA(**PARAMS, random_state=model.random_state)
                               .fit(X, POSITION), exact=False)


def test_multi_session_seeds_equal_solo_fits():
    sessions = [X[:400, :6], X[300:, :5]]
    labels = [POSITION[:400], POSITION[300:]]
    params = {**PARAMS, "max_iterations": 15, "batch_size": 32}
    for model in fit_seeds(params, sessions, labels, seeds=[0, 1]):
        solo = CEBRA(**params, random_state=model.random_state).fit(sessions, labels)
        _assert_same_estimator(model, solo)


def test_fitted_seeds_save_load_and_continue_like_solo_fits(tmp_path):
    model, = fit_seeds(PARAMS, X, POSITION, seeds=[5])
    solo = CEBRA(**PARAMS, random_state=5).fit(X, POSITION)
    model.save(tmp_path / "ensemble.pt")
    solo.save(tmp_path / "solo.pt")
    loaded = CEBRA.load(tmp_path / "ensemble.pt")
    _assert_same_estimator(loaded, CEBRA.load(tmp_path / "solo.pt"))
    _assert_same_estimator(loaded, model)
    # partial_fit continues from the same weights, optimizer state and sampler stream
    _assert_same_estimator(model.partial_fit(X, POSITION), solo.partial_fit(X, POSITION))


def test_per_estimator_labels(tmp_path):
    """fit_ensemble takes one data tuple per estimator (e.g. per-seed shuffled labels)."""
    shuffled = [POSITION[np.random.default_rng(s).permutation(len(POSITION))] for s in (0, 1)]
    estimators = [CEBRA(**PARAMS, random_state=s, verbose=s == 0) for s in (0, 1)]
    fitted = fit_ensemble(estimators, [(X, y) for y in shuffled])
    assert fitted == estimators
    for seed, model in enumerate(fitted):
        _assert_same_estimator(model, CEBRA(**PARAMS, random_state=seed, verbose=seed == 0)
                               .fit(X, shuffled[seed]))


def test_interrupted_fit_seeds_resumes_bit_identically(tmp_path, monkeypatch):
    params = {**PARAMS, "max_iterations": 40}
    dirs = [tmp_path / f"seed{s}" for s in (0, 1, 2)]
    original = Solver.save_checkpoint
    written = []

    def dies_at_step_20(self, directory, step, loader):
        path = original(self, directory, step, loader)
        written.append(step)
        if step == 20:  # killed after the first seed's checkpoint of step 20
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(Solver, "save_checkpoint", dies_at_step_20)
    with pytest.raises(KeyboardInterrupt):
        fit_seeds(params, X, POSITION, seeds=[0, 1, 2], checkpoint_dirs=dirs,
                  checkpoint_frequency=10)
    monkeypatch.setattr(Solver, "save_checkpoint", original)
    assert written == [10, 10, 10, 20]
    assert [sorted(p.name for p in d.glob("*.pt")) for d in dirs] == [
        ["checkpoint_00000020.pt"], ["checkpoint_00000010.pt"], ["checkpoint_00000010.pt"]]
    resumed = fit_seeds(params, X, POSITION, seeds=[0, 1, 2], checkpoint_dirs=dirs,
                        checkpoint_frequency=10)
    for model in resumed:
        _assert_same_estimator(model, CEBRA(**params, random_state=model.random_state)
                               .fit(X, POSITION))


def test_exported():
    assert cebra_pipe.fit_seeds is fit_seeds
    assert cebra_pipe.sklearn.fit_seeds is fit_seeds
    assert cebra_pipe.sklearn.fit_ensemble is fit_ensemble


# -- errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds, error, match", [
    ([], ValueError, "seeds is empty"),
    ([0, 0], ValueError, "distinct"),
    ([-1], ValueError, "non-negative integers"),
    ([1.5], ValueError, "non-negative integers"),
    ("012", TypeError, "list of integers"),
])
def test_bad_seeds_are_refused(seeds, error, match):
    with pytest.raises(error, match=match):
        fit_seeds(PARAMS, X, POSITION, seeds=seeds)


def test_bad_ensembles_are_refused():
    with pytest.raises(ValueError, match="random_state"):
        fit_seeds({**PARAMS, "random_state": 0}, X, POSITION, seeds=[1])
    with pytest.raises(ValueError, match="at least one estimator"):
        fit_ensemble([], [])
    with pytest.raises(ValueError, match=r"differs from estimators\[0\] in \['output_dimension'\]"):
        fit_ensemble([CEBRA(**PARAMS), CEBRA(**{**PARAMS, "output_dimension": 4})],
                     [(X, POSITION)] * 2)
    with pytest.raises(ValueError, match="2 data tuples for 1 estimators"):
        fit_ensemble([CEBRA(**PARAMS)], [(X, POSITION)] * 2)
    with pytest.raises(ValueError, match="different architecture"):
        fit_ensemble([CEBRA(**PARAMS, random_state=0), CEBRA(**PARAMS, random_state=1)],
                     [(X, POSITION), (X[:, :5], POSITION)])
    with pytest.raises(ValueError, match="max_iterations must be a positive integer"):
        fit_seeds({**PARAMS, "max_iterations": 0}, X, POSITION, seeds=[0])


# -- the pipeline: train-single --ensemble on -----------------------------------------------
SMALL_MODEL = {"model_architecture": "offset10-model", "conditional": "time_delta",
               "time_offsets": 5, "batch_size": 32, "max_iterations": 30,
               "output_dimension": 3, "learning_rate": 0.003, "checkpoint_every": 5}
LABEL_SPECS = {"position": {"type": "continuous", "key": "continuous", "index": 0}}


def _session(tmp_path: Path, name: str, seed: int) -> tuple[Path, Path]:
    """(session, split) files of a small synthetic rat, made by the ingest and split steps."""
    from cebra_pipe import datasets
    from cebra_pipe.pipeline import ingest, split

    rec = datasets.init("synthetic-linear-track", animal="rat2", seed=seed, duration=40)
    raw = tmp_path / f"{name}-raw.npz"
    np.savez(raw, neural=rec.neural, continuous=rec.continuous, discrete=rec.discrete)
    session, split_file = tmp_path / "sessions" / f"{name}.npz", tmp_path / "splits" / f"{name}.npz"
    row = {"animal": "a1", "session": name, "neural_file": str(raw), "neural_key": "neural"}
    assert ingest.cli(["--row", json.dumps(row), "--labels", json.dumps(LABEL_SPECS),
                       "--out", str(session), "--provenance", str(session) + ".json"]) == 0
    assert split.cli(["--session", str(session), "--min-samples", "50", "--out",
                      str(split_file), "--provenance", str(split_file) + ".json"]) == 0
    return session, split_file


@pytest.fixture()
def session_files(tmp_path) -> tuple[Path, Path]:
    return _session(tmp_path, "s1", 3)


def _train_args(files, outdir: Path, ensemble: str, labels=None, model=SMALL_MODEL) -> list:
    labels = labels or {"names": ["position"], "shuffle": False}
    return ["--session", str(files[0]), "--split", str(files[1]), "--model", json.dumps(model),
            "--labels", json.dumps(labels), "--seeds", "0,1,2", "--device", "cpu",
            "--ensemble", ensemble, "--outdir", str(outdir), "--checkpoints",
            str(outdir.parent / f"{outdir.name}-ck")]


def _outputs(outdir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(outdir)): p.read_bytes() for p in sorted(outdir.rglob("*"))
            if p.suffix in (".npy", ".tsv")}


@pytest.mark.parametrize("labels", [None, {"names": ["position"], "shuffle": True,
                                           "shuffle_seed": 4, "null_kind": "permutation",
                                           "min_shift": 1, "within_trials": False}])
def test_train_single_ensemble_writes_the_sequential_outputs(tmp_path, session_files, capsys,
                                                             labels):
    from cebra_pipe.pipeline import train

    assert train.cli(_train_args(session_files, tmp_path / "seq", "off", labels)) == 0
    assert train.cli(_train_args(session_files, tmp_path / "ens", "on", labels)) == 0
    log = capsys.readouterr().out
    assert "seed 2: starting at step 0 of 30 (ensemble of 3 seeds)" in log
    sequential, ensemble = _outputs(tmp_path / "seq"), _outputs(tmp_path / "ens")
    assert len(sequential) == 9 and sequential == ensemble
    provenance = json.loads((tmp_path / "ens" / "seed1" / "provenance.json").read_text())
    assert "ensemble of 3 seeds" in json.dumps(provenance)
    assert not any((tmp_path / "ens-ck").rglob("*.pt"))


def test_train_multi_ensemble_writes_the_sequential_outputs(tmp_path):
    from cebra_pipe.pipeline import train

    files = [_session(tmp_path, name, seed) for name, seed in (("s1", 3), ("s2", 4))]
    model = {**SMALL_MODEL, "max_iterations": 15}

    def args(name: str, ensemble: str) -> list:
        return ["--sessions", *(str(f[0]) for f in files), "--splits",
                *(str(f[1]) for f in files), "--model", json.dumps(model), "--labels",
                json.dumps({"names": ["position"]}), "--seeds", "0,1", "--device", "cpu",
                "--ensemble", ensemble, "--outdir", str(tmp_path / name), "--checkpoints",
                str(tmp_path / f"{name}-ck")]

    assert train.cli_for("train-multi", args("seq", "off")) == 0
    assert train.cli_for("train-multi", args("ens", "on")) == 0
    sequential = _outputs(tmp_path / "seq")
    assert len(sequential) == 2 and sequential == _outputs(tmp_path / "ens")
    for seed in (0, 1):
        a, b = (np.load(tmp_path / name / f"seed{seed}" / "embeddings.npz")
                for name in ("seq", "ens"))
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_ensemble_auto_is_sequential_on_the_cpu():
    from cebra_pipe.pipeline.train import use_ensemble

    assert not use_ensemble("auto", "cpu") and use_ensemble("on", "cpu")
    assert use_ensemble("auto", "cuda_if_available") == torch.cuda.is_available()
    assert not use_ensemble("off", "cuda_if_available")


@pytest.mark.slow
def test_killed_ensemble_job_resumes_to_the_same_outputs(tmp_path, session_files):
    """SIGKILL ``train-single --ensemble on`` mid-training; the rerun resumes every seed from
    its checkpoint and writes the outputs of an uninterrupted sequential run."""
    from cebra_pipe.pipeline import train

    model = {**SMALL_MODEL, "max_iterations": 800, "checkpoint_every": 20}
    outdir = tmp_path / "ens"
    command = [sys.executable, "-m", "cebra_pipe", "train-single",
               *_train_args(session_files, outdir, "on", model=model)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    checkpoints = outdir.parent / "ens-ck"
    deadline = time.time() + 600
    while len(list(checkpoints.rglob("checkpoint_00000040.pt"))) != 3:
        assert process.poll() is None, process.stdout.read()
        assert time.time() < deadline, "no checkpoint at step 40 within 600 s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert not (outdir / "seed0" / "model.pt").exists()

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for seed in (0, 1, 2):
        match = re.search(rf"seed {seed}: resuming from checkpoint at step (\d+) of 800 "
                          r"\(ensemble of 3 seeds\)", rerun.stdout)
        assert match and int(match.group(1)) >= 40, rerun.stdout
    assert train.cli(_train_args(session_files, tmp_path / "seq", "off", model=model)) == 0
    assert _outputs(outdir) == _outputs(tmp_path / "seq")
    assert not any(checkpoints.rglob("*.pt"))
