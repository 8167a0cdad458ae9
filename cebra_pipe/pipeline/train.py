"""``python -m cebra_pipe train-single`` / ``train-multi``: fit every seed of one model.

All seeds of one configuration train in one process, so a cluster gets one job per
configuration instead of one per seed (each would spend seconds importing torch).

* ``train-single``: one session, on its train split. Per seed, under
  ``<outdir>/seed<k>/``: ``model.pt``, ``embedding_train.npy`` and
  ``embedding_valid.npy`` (time, output_dimension), ``loss.tsv`` and
  ``provenance.json``.
* ``train-multi``: one model over the sessions of a group. Per seed:
  ``model.pt``, ``embeddings.npz`` (``sessions`` names, ``train_<i>``/``valid_<i>``
  per session), ``loss.tsv``, ``provenance.json``.

``--ensemble`` decides how the seeds share the process. ``on``: the seeds still to be
trained train together in lock-step as a batched ensemble
(:func:`cebra_pipe.sklearn.ensemble.fit_ensemble`); ``off``: one after another.
``auto`` (the default) is ``on`` when ``--device`` resolves to a GPU, where one
batched network over the seeds replaces K small ones (fewer, larger kernels; not
yet measured on a GPU), and ``off`` on the CPU, where training is compute bound and
an ensemble gains little (about 8% for 5 seeds, ``benchmarks/bench_ensemble.py``)
while sequential training finishes (and keeps) the first seeds early. Every seed's
outputs are the same either way: bit-identical on the CPU, equal to float tolerance
on a GPU.

Training state is checkpointed every ``checkpoint_every`` iterations under
``--checkpoints`` (outside the declared outputs), one folder per seed. A killed job,
rerun, resumes each seed from its newest checkpoint (seeds that had finished are not
retrained); the checkpoints are removed once every output is written. The checkpoint
folder name carries a hash of the model parameters, labels, seed and input files, so
a changed configuration never resumes from a stale state.

Ensemble checkpoints are the same per-seed files: at every checkpoint step the
ensemble writes each seed's state (weights, optimizer, loss history, sampler and
RNG state) into that seed's folder, in the format of a sequential run. A rerun,
ensemble or not, resumes each seed from its own newest checkpoint; if the job died
while the seeds' checkpoints of one step were being written, the seeds that are
behind are first advanced to the others' step, then all continue together. So the
two modes can resume each other's checkpoints, and a resumed ensemble ends exactly
where an uninterrupted one does.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.pipeline.arguments import check_label_spec, check_model_params, parse_seeds
from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, control_labels,
                                        json_arg, load_session, load_split, run, save_npy,
                                        save_npz, sha256_file, sha256_json, training_labels,
                                        write_provenance, write_tsv)
from cebra_pipe.pipeline.labels import MIN_SHARED_RANGE_TRAINING, check_shared_range
from cebra_pipe.pipeline.layout import seed_dir
from cebra_pipe.runtime import set_torch_threads


def _parser(step: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {step}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if step == "train-single":
        parser.add_argument("--session", required=True, help="session file (ingest step)")
        parser.add_argument("--split", required=True, help="split file (split step)")
    else:
        parser.add_argument("--sessions", nargs="+", required=True, help="session files")
        parser.add_argument("--splits", nargs="+", required=True,
                            help="split files, in the order of --sessions")
    parser.add_argument("--model", type=json_arg, required=True,
                        help="estimator parameters as JSON (model_architecture, ...)")
    parser.add_argument("--labels", type=json_arg, required=True,
                        help='label spec as JSON: {"names": [...], "shuffle": bool, '
                             '"shuffle_seed": int}')
    parser.add_argument("--seeds", required=True, help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--device", default="cuda_if_available")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: the job's CPU allocation)")
    parser.add_argument("--outdir", required=True)
    parser.add_argument("--checkpoints", required=True,
                        help="folder for resumable training state (not an output)")
    parser.add_argument("--ensemble", choices=("auto", "on", "off"), default="auto",
                        help="train the seeds together as a batched ensemble (on), one after "
                             "another (off), or on only when training on a GPU (auto)")
    parser.add_argument("--verbose", action=argparse.BooleanOptionalAction, default=True,
                        help="training progress: lines (step, loss, steps/s, ETA) in the "
                             "job log, a bar on a terminal")
    return parser


# ------------------------------------------------------------------------ training

def _estimator(params: dict[str, Any], seed: int, device: str, verbose: bool):
    from cebra_pipe import CEBRA

    return CEBRA(**params, device=device, random_state=seed, verbose=verbose)


def _checkpoint_dir(root: Path, seed: int, key: Any) -> Path:
    """``<root>/seed<k>-<hash>``; older folders of this seed (other hashes) are removed."""
    digest = sha256_json(key)[:16]
    path = root / f"seed{seed}-{digest}"
    if root.is_dir():
        for stale in root.glob(f"seed{seed}-*"):
            if stale != path:
                shutil.rmtree(stale, ignore_errors=True)
    return path


def _finished(checkpoint_dir: Path, device: str):
    """The final state kept from an earlier run of this seed, or ``None``."""
    from cebra_pipe import CEBRA

    final = checkpoint_dir / "final.pt"
    if final.is_file():
        try:
            return CEBRA.load(final, map_location=device)
        except (ValueError, OSError) as err:
            aside = final.with_name(final.name + ".corrupt")
            final.replace(aside)
            print(f"  kept state '{final}' cannot be read ({err}); set aside as '{aside}', "
                  "training this seed again.", flush=True)
    return None


def _announce(seed: int, checkpoint_dir: Path, total: int, note: str = "") -> str:
    """Print where ``seed`` starts; returns the matching provenance text."""
    from cebra_pipe.solver import newest_checkpoint

    # Unreadable checkpoints are set aside (with a warning): the step is the one resumed.
    newest = newest_checkpoint(checkpoint_dir)
    steps = [] if newest is None else [int(newest[1]["step"])]
    how = (f"resumed from checkpoint at step {steps[-1]} of {total}" if steps
           else f"trained from step 0 of {total}")
    print(f"  seed {seed}: " + (f"resuming from checkpoint at step {steps[-1]} of {total}"
                                if steps else f"starting at step 0 of {total}") + note,
          flush=True)
    return how + note


def fit_seed(params: dict[str, Any], seed: int, device: str, X: Any, y: tuple,
             checkpoint_dir: Path, every: int, verbose: bool = False,
             segments: Any = None) -> tuple[Any, str]:
    """Fit one seed, resuming from ``checkpoint_dir``; returns ``(model, how)``.

    ``segments`` are passed to ``fit`` (seams no window or positive crosses).

    ``how`` says whether the seed trained from step 0, resumed from a checkpoint, or
    was already finished (its final state is kept until the whole job succeeds).
    """
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    model = _finished(checkpoint_dir, device)
    if model is not None:
        return model, "already trained (final state kept)"
    how = _announce(seed, checkpoint_dir, params["max_iterations"])
    model = _estimator(params, seed, device, verbose)
    model.fit(X, *y, segments=segments, checkpoint_dir=checkpoint_dir,
              checkpoint_frequency=every)
    model.save(checkpoint_dir / "final.pt")
    return model, how


def use_ensemble(mode: str, device: str) -> bool:
    """Whether ``--ensemble mode`` trains the seeds together on ``device``."""
    if mode != "auto":
        return mode == "on"
    from cebra_pipe import CEBRA

    return CEBRA(device=device).resolved_device().type != "cpu"


def fit_seeds_together(params: dict[str, Any], seeds: list[int], device: str,
                       data: dict[int, tuple], folders: dict[int, Path], every: int,
                       verbose: bool = False, segments: Any = None
                       ) -> dict[int, tuple[Any, str]]:
    """Fit the unfinished ``seeds`` as one ensemble; ``seed -> (model, how)``.

    ``data[seed] = (X, *y)``. Finished seeds (a kept final state) are loaded, the
    others train in lock-step with per-seed checkpoints in ``folders[seed]``.
    """
    from cebra_pipe.sklearn.ensemble import fit_ensemble

    done: dict[int, tuple[Any, str]] = {}
    for seed in seeds:
        folders[seed].mkdir(parents=True, exist_ok=True)
        model = _finished(folders[seed], device)
        if model is not None:
            done[seed] = (model, "already trained (final state kept)")
    todo = [seed for seed in seeds if seed not in done]
    if not todo:
        return done
    note = f" (ensemble of {len(todo)} seeds)" if len(todo) > 1 else ""
    hows = {seed: _announce(seed, folders[seed], params["max_iterations"], note)
            for seed in todo}
    models = fit_ensemble([_estimator(params, seed, device, verbose) for seed in todo],
                          [data[seed] for seed in todo],
                          checkpoint_dirs=[folders[seed] for seed in todo],
                          checkpoint_frequency=every, segments=segments)
    for seed, model in zip(todo, models):
        model.save(folders[seed] / "final.pt")
        done[seed] = (model, hows[seed])
    return done


def _fit_all(args: argparse.Namespace, params: dict[str, Any], seeds: list[int],
             data: Any, folders: dict[int, Path], segments: Any = None):
    """Yield ``(seed, model, how)`` in seed order, trained together or one by one.

    ``data(seed) -> (X, *y)``; ``segments`` as ``CEBRA.fit`` takes them. Sequentially
    each seed is yielded (and its outputs written) as soon as it is trained.
    """
    every = int(args.model.get("checkpoint_every", 100))
    # The lock-step ensemble computes the plain loss only (no regularisers).
    if use_ensemble(args.ensemble, args.device) and not params.get("jacobian_regularization"):
        fitted = fit_seeds_together(params, seeds, args.device,
                                    {seed: data(seed) for seed in seeds}, folders, every,
                                    args.verbose, segments)
        for seed in seeds:
            yield (seed, *fitted[seed])
        return
    for seed in seeds:
        X, *y = data(seed)
        yield (seed, *fit_seed(params, seed, args.device, X, tuple(y), folders[seed], every,
                               args.verbose, segments))


def write_loss(path: Path, model: Any) -> None:
    """Loss history per step: loss, alignment (pos), uniformity (neg), temperature, GoF."""
    import pandas as pd

    from cebra_pipe.sklearn.metrics import goodness_of_fit_history

    state = model.state_dict_
    loss = np.asarray(state["loss"], dtype=np.float64)
    frame = pd.DataFrame({"step": np.arange(1, len(loss) + 1), "loss": loss})
    for key, column in (("pos", "alignment"), ("neg", "uniformity"),
                        ("temperature", "temperature")):
        values = state.get("log", {}).get(key)
        if values is not None and len(values) == len(loss):
            frame[column] = np.asarray(values, dtype=np.float64)
    try:
        frame["gof_bits"] = goodness_of_fit_history(model)
    except (ValueError, AttributeError):
        pass
    write_tsv(path, frame)


def _setup_torch(threads: int | None) -> int:
    """Set torch's CPU threads (``None``: the job's allocation); returns the count."""
    if threads is not None and threads < 1:
        raise PipelineError(f"--threads must be >= 1, got {threads}.")
    return set_torch_threads(threads)


def train_single(args: argparse.Namespace) -> None:
    params = check_model_params(args.model)
    spec = check_label_spec(args.labels)
    seeds = parse_seeds(args.seeds)
    threads = _setup_torch(args.threads)
    session = load_session(args.session)
    split = load_split(args.split, len(session.neural))
    outdir, root = Path(args.outdir), Path(args.checkpoints)
    inputs = [args.session, args.split]
    input_hashes = {Path(p).name: sha256_file(p) for p in inputs}
    X_train, X_valid = session.neural[split["train"]], session.neural[split["valid"]]
    # Seams of the session and the gaps the split leaves: no window crosses them.
    seg_train, seg_valid = (session.segments_at(split["train"]),
                            session.segments_at(split["valid"]))
    print(f"train-single {session.name}: labels {spec['names'] or 'none (CEBRA-Time)'}"
          f"{' (shuffled control)' if spec['shuffle'] else ''}, seeds {seeds}, "
          f"{len(X_train)} train / {len(X_valid)} valid steps", flush=True)
    outputs = [seed_dir(outdir, s) / name for s in seeds
               for name in ("model.pt", "embedding_train.npy", "embedding_valid.npy",
                            "loss.tsv", "provenance.json")]
    key = {"params": params, "labels": spec, "device": args.device, "inputs": input_hashes}
    folders = {seed: _checkpoint_dir(root, seed, key) for seed in seeds}

    def data(seed: int) -> tuple:
        return (X_train, *control_labels(session, spec, split["train"],
                                         [spec["shuffle_seed"], seed, 0]))

    with all_or_nothing(outputs):
        for seed, model, how in _fit_all(args, params, seeds, data, folders, seg_train):
            print(f"  seed {seed}: {how}; final loss {float(model.state_dict_['loss'][-1]):.4f}",
                  flush=True)
            target = seed_dir(outdir, seed)
            model.save(target / "model.pt")
            save_npy(target / "embedding_train.npy",
                     model.transform(X_train, segments=seg_train).astype(np.float32))
            save_npy(target / "embedding_valid.npy",
                     model.transform(X_valid, segments=seg_valid).astype(np.float32))
            write_loss(target / "loss.tsv", model)
            write_provenance(target / "provenance.json", "train-single",
                             params={"model": params, "labels": spec, "device": args.device},
                             inputs=inputs, seeds=[seed],
                             extra={"device_used": str(getattr(model, "device_", args.device)),
                                    "training": how, "threads": threads})
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)


def train_multi(args: argparse.Namespace) -> None:
    params = check_model_params(args.model)
    spec = check_label_spec(args.labels)
    seeds = parse_seeds(args.seeds)
    if len(args.sessions) != len(args.splits):
        raise PipelineError(f"--sessions has {len(args.sessions)} files but --splits has "
                            f"{len(args.splits)}; give one split per session.")
    if len(args.sessions) < 2:
        raise PipelineError("train-multi needs at least 2 sessions.")
    if not spec["names"]:
        raise PipelineError("train-multi needs labels (multi-session training aligns sessions "
                            "on them); --labels has no names.")
    threads = _setup_torch(args.threads)
    sessions = [load_session(p) for p in args.sessions]
    for label in spec["names"]:
        check_shared_range(sessions, label, "multi-session training",
                           MIN_SHARED_RANGE_TRAINING)
    splits = [load_split(p, len(s.neural)) for p, s in zip(args.splits, sessions)]
    names = [s.name for s in sessions]
    outdir, root = Path(args.outdir), Path(args.checkpoints)
    inputs = list(args.sessions) + list(args.splits)
    input_hashes = {f"{i}:{Path(p).name}": sha256_file(p) for i, p in enumerate(inputs)}
    X_train = [s.neural[sp["train"]] for s, sp in zip(sessions, splits)]
    X_valid = [s.neural[sp["valid"]] for s, sp in zip(sessions, splits)]
    seg_train = [s.segments_at(sp["train"]) for s, sp in zip(sessions, splits)]
    seg_valid = [s.segments_at(sp["valid"]) for s, sp in zip(sessions, splits)]
    print(f"train-multi {names}: labels {spec['names']}, seeds {seeds}", flush=True)
    outputs = [seed_dir(outdir, s) / name for s in seeds
               for name in ("model.pt", "embeddings.npz", "loss.tsv", "provenance.json")]
    key = {"params": params, "labels": spec, "device": args.device, "inputs": input_hashes}
    folders = {seed: _checkpoint_dir(root, seed, key) for seed in seeds}

    def data(seed: int) -> tuple:
        per_session = [training_labels(s, spec["names"], sp["train"],
                                       [spec["shuffle_seed"], seed, 0, i]
                                       if spec["shuffle"] else None)
                       for i, (s, sp) in enumerate(zip(sessions, splits))]
        if any(len(y) != 1 for y in per_session):
            raise PipelineError(f"train-multi: label set {spec['names']} must give one "
                                "label array per session (continuous only, or one "
                                "discrete label).")
        return (X_train, [labels[0] for labels in per_session])

    with all_or_nothing(outputs):
        for seed, model, how in _fit_all(args, params, seeds, data, folders, seg_train):
            print(f"  seed {seed}: {how}", flush=True)
            target = seed_dir(outdir, seed)
            model.save(target / "model.pt")
            arrays: dict[str, np.ndarray] = {"sessions": np.array(names)}
            for i in range(len(sessions)):
                arrays[f"train_{i}"] = model.transform(X_train[i], session_id=i,
                                                       segments=seg_train[i]).astype(np.float32)
                arrays[f"valid_{i}"] = model.transform(X_valid[i], session_id=i,
                                                       segments=seg_valid[i]).astype(np.float32)
            save_npz(target / "embeddings.npz", arrays)
            write_loss(target / "loss.tsv", model)
            write_provenance(target / "provenance.json", "train-multi",
                             params={"model": params, "labels": spec, "device": args.device,
                                     "sessions": names},
                             inputs=inputs, seeds=[seed],
                             extra={"device_used": str(getattr(model, "device_", args.device)),
                                    "training": how, "threads": threads})
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)


def main_for(step: str, argv: Sequence[str] | None = None) -> None:
    args = _parser(step).parse_args(argv)
    (train_single if step == "train-single" else train_multi)(args)


def cli_for(step: str, argv: Sequence[str] | None = None) -> int:
    return run(lambda a: main_for(step, a), argv, step)


def cli(argv: Sequence[str] | None = None) -> int:
    return cli_for("train-single", argv)
