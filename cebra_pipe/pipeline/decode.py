"""``python -m cebra_pipe decode``: decoding and goodness of fit of one configuration.

For every seed, a kNN decoder (cosine distance) is fitted on the train-split
embedding and scored on the valid-split embedding, for every target label:
continuous labels give ``r2`` and ``median_abs_error`` (Euclidean norm of the error
for multi-column labels), discrete labels give ``accuracy``. The valid-split
goodness of fit (``gof_bits``, 0 = chance) and InfoNCE of the model on the labels it
was trained with (shuffled the same way for shuffled controls) complete the table.

Output: a long TSV (``animal, session, model, labels, label_set, control, seed,
target, metric, value``) and a provenance JSON.

Single-session models read ``embedding_{train,valid}.npy`` files; with
``--multi``, the embeddings of every session in a multi-session model's
``embeddings.npz`` are decoded and GoF is computed per session (``session_id``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.pipeline.arguments import check_label_spec, parse_seeds
from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, check_embedding,
                                        control_labels, json_arg, load_embedding, load_model,
                                        load_npz, load_session, load_split, run,
                                        write_provenance, write_tsv)
from cebra_pipe.pipeline.config import Variant
from cebra_pipe.pipeline.layout import seed_dir

STEP = "decode"
METRICS_HIGHER_IS_BETTER = {"r2": True, "accuracy": True, "gof_bits": True,
                            "median_abs_error": False, "infonce": False}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", nargs="+", required=True,
                        help="session file(s): one for single-session, the group for --multi")
    parser.add_argument("--splits", nargs="+", required=True, help="split file(s), same order")
    parser.add_argument("--dir", required=True,
                        help="training output folder holding seed<k>/ subfolders")
    parser.add_argument("--multi", action="store_true", help="a multi-session model")
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--labels-name", required=True)
    parser.add_argument("--labels", type=json_arg, required=True, help="label spec JSON")
    parser.add_argument("--targets", type=json_arg, required=True,
                        help="JSON list of labels to decode")
    parser.add_argument("--knn-neighbors", type=int, default=25)
    parser.add_argument("--gof-batches", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--provenance", required=True)
    return parser


def decode_scores(train_embedding: np.ndarray, valid_embedding: np.ndarray,
                  y_train: np.ndarray, y_valid: np.ndarray, neighbors: int,
                  kind: str) -> dict[str, float]:
    """Validation scores of a kNN decoder fitted on the train embedding.

    Parameters
    ----------
    train_embedding, valid_embedding : (time, dims)
    y_train, y_valid : (time,) classes (discrete) or (time,)/(time, d) values (continuous)
    neighbors : k, capped at the number of train samples
    kind : the label's kind, ``discrete`` (accuracy) or ``continuous`` (R², median error)
    """
    from cebra_pipe.decoders import KNNDecoder

    k = max(1, min(int(neighbors), len(train_embedding)))
    decoder = KNNDecoder(n_neighbors=k, metric="cosine").fit(train_embedding, y_train)
    prediction = decoder.predict(valid_embedding)
    if kind == "discrete":
        return {"accuracy": float(np.mean(prediction.reshape(-1) == y_valid.reshape(-1)))}
    truth = y_valid.reshape(len(y_valid), -1).astype(np.float64)
    predicted = np.asarray(prediction, dtype=np.float64).reshape(truth.shape)
    error = np.linalg.norm(predicted - truth, axis=1)
    import sklearn.metrics

    return {"r2": float(sklearn.metrics.r2_score(truth, predicted)),
            "median_abs_error": float(np.median(error))}


def _target(session: Any, name: str, idx: np.ndarray) -> np.ndarray:
    if name not in session.labels:
        raise PipelineError(f"session {session.name}: target label {name!r} is not in the "
                            f"session file (labels: {sorted(session.labels)}).")
    values = session.labels[name][idx]
    if session.label_type(name) == "continuous" and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return values


def _fit_scores(model: Any, X: np.ndarray, y: tuple, batches: int, session_id: int | None,
                segments: np.ndarray | None = None) -> dict[str, float]:
    from cebra_pipe.sklearn.metrics import goodness_of_fit_score, infonce_loss

    kwargs = {"num_batches": batches, "seed": 0, "segments": segments}
    if session_id is not None:
        kwargs["session_id"] = session_id
    return {"gof_bits": float(goodness_of_fit_score(model, X, *y, **kwargs)),
            "infonce": float(infonce_loss(model, X, *y, **kwargs))}


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    import pandas as pd
    import torch

    torch.set_num_threads(max(1, args.threads))
    seeds = parse_seeds(args.seeds)
    spec = check_label_spec(args.labels)
    if not isinstance(args.targets, list) or not args.targets:
        raise PipelineError("--targets must be a non-empty JSON list of label names.")
    if args.knn_neighbors < 1 or args.gof_batches < 1:
        raise PipelineError("--knn-neighbors and --gof-batches must be >= 1.")
    if len(args.sessions) != len(args.splits):
        raise PipelineError("give one --splits file per --sessions file.")
    if not args.multi and len(args.sessions) != 1:
        raise PipelineError("single-session decoding takes one --sessions file (or --multi).")
    sessions = [load_session(p) for p in args.sessions]
    splits = [load_split(p, len(s.neural)) for p, s in zip(args.splits, sessions)]
    folder = Path(args.dir)
    rows: list[dict[str, Any]] = []
    inputs = list(args.sessions) + list(args.splits)
    for seed in seeds:
        model_file = seed_dir(folder, seed) / "model.pt"
        inputs.append(str(model_file))
        model = load_model(model_file, args.device)
        if args.multi:
            embeddings = load_npz(seed_dir(folder, seed) / "embeddings.npz", "embeddings file")
            inputs.append(str(seed_dir(folder, seed) / "embeddings.npz"))
            names = [str(n) for n in embeddings["sessions"]]
        for i, (session, split) in enumerate(zip(sessions, splits)):
            if args.multi:
                if session.name not in names:
                    raise PipelineError(f"session {session.name} is not in the multi-session "
                                        f"model's embeddings ({names}).")
                j = names.index(session.name)
                where = f"embeddings file '{seed_dir(folder, seed) / 'embeddings.npz'}'"
                train_emb, valid_emb = (check_embedding(embeddings[f"{s}_{j}"],
                                                        f"{where}, key '{s}_{j}'")
                                        for s in ("train", "valid"))
            else:
                paths = [seed_dir(folder, seed) / f"embedding_{s}.npy" for s in ("train", "valid")]
                inputs += [str(p) for p in paths]
                train_emb, valid_emb = (load_embedding(p) for p in paths)
            for name, n in (("train", len(split["train"])), ("valid", len(split["valid"]))):
                emb = train_emb if name == "train" else valid_emb
                if len(emb) != n:
                    raise PipelineError(f"the {name} embedding of {session.name} (seed {seed}) "
                                        f"has {len(emb)} rows but the split has {n}; rerun "
                                        "training.")
            base = {"animal": session.meta["animal"], "session": session.meta["session"],
                    "model": args.model_name, "labels": args.labels_name,
                    "label_set": Variant(args.model_name, args.labels_name).label_set
                    or args.labels_name,
                    "control": "shuffled" if spec["shuffle"] else "real",
                    "kind": "multi" if args.multi else "single", "seed": seed}
            for target in args.targets:
                scores = decode_scores(train_emb, valid_emb,
                                       _target(session, target, split["train"]),
                                       _target(session, target, split["valid"]),
                                       args.knn_neighbors, session.label_type(target))
                rows += [{**base, "target": target, "metric": m, "value": v}
                         for m, v in scores.items()]
            y_valid = control_labels(session, spec, split["valid"],
                                     [spec["shuffle_seed"], seed, 1] + ([i] if args.multi else []))
            fit = _fit_scores(model, session.neural[split["valid"]], y_valid, args.gof_batches,
                              i if args.multi else None, session.segments_at(split["valid"]))
            rows += [{**base, "target": "-", "metric": m, "value": v} for m, v in fit.items()]
    frame = pd.DataFrame(rows)
    with all_or_nothing([args.out, args.provenance]):
        write_tsv(args.out, frame)
        write_provenance(args.provenance, STEP,
                         params={"labels": spec, "targets": args.targets,
                                 "knn_neighbors": args.knn_neighbors,
                                 "gof_batches": args.gof_batches, "model": args.model_name},
                         inputs=inputs, seeds=seeds)
    summary = frame.groupby(["target", "metric"])["value"].mean()
    print(f"decode {args.model_name}/{args.labels_name}: mean over seeds\n{summary.to_string()}")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
