"""``python -m cebra_pipe join-cohort``: embed a new session into an existing cohort model.

A cohort model is a trained multi-session model (``config: cohort_models``; e.g. a
``multi/<group>/...`` model of an earlier analysis). A session whose sheet row names
it in the ``joins`` column is added to it without retraining the cohort: the
session's train split is adapted in (``CEBRA.fit(adapt=True, session_id=<next free
index>)``: a new input layer for its neurons, trained against the frozen cohort by
matching the labels of the cohort's label set, :mod:`cebra_pipe.sklearn.adapt`).

Outputs (one folder per session and cohort model):

* ``model.pt``: the cohort model grown by this session (cohort sessions unchanged);
* ``embeddings.npz``: ``train`` and ``valid`` embeddings of the session in the
  cohort's space, and ``session_id``;
* ``consistency.tsv``: R^2 (%) of the linear map from the session's valid-split
  embedding to each cohort session's embedding, aligned by label bins
  (:func:`cebra_pipe.sklearn.adapt.cohort_consistency`), next to the same score of the
  session's unadapted input layer (its chance level: a random input layer on the
  cohort's frozen encoder);
* ``provenance.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, json_arg, load_model,
                                        load_session, load_split, run, save_npz,
                                        training_labels, write_provenance, write_tsv)
from cebra_pipe.pipeline.config import ConfigError

STEP = "join-cohort"
#: Files of one joined session, in its output folder.
OUTPUTS = ("model.pt", "embeddings.npz", "consistency.tsv", "provenance.json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort-model", required=True, help="the cohort's model.pt")
    parser.add_argument("--cohort-name", required=True,
                        help="its name in the config (cohort_models.<name>)")
    parser.add_argument("--session", required=True, help="the new session's file")
    parser.add_argument("--split", required=True, help="its split file")
    parser.add_argument("--labels", type=json_arg, required=True,
                        help='the cohort\'s label set, JSON {"names": [...]}')
    parser.add_argument("--align-label", default=None,
                        help="label whose bins align the session with the cohort "
                             "(default the label set's first)")
    parser.add_argument("--num-bins", type=int, default=40)
    parser.add_argument("--max-adapt-iterations", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--outdir", required=True, help=f"folder for {', '.join(OUTPUTS)}")
    return parser


# ------------------------------------------------------------------ parse time
def check_joins(rows: Iterable[Mapping[str, Any]], config: Mapping[str, Any],
                where: str) -> dict[tuple[str, str], str]:
    """``(animal, session) -> cohort model name`` of the sheet rows with ``joins`` set.

    Raises :class:`ConfigError` for a ``joins`` that names no ``cohort_models`` entry and
    for a cohort model whose ``label_set`` is not in ``label_sets``.
    """
    cohorts = config.get("cohort_models", {})
    for name, spec in cohorts.items():
        if spec["label_set"] not in config.get("label_sets", {}):
            raise ConfigError(f"Invalid config: cohort_models.{name}.label_set is "
                              f"{spec['label_set']!r}, not a label set of label_sets "
                              f"({sorted(config.get('label_sets', {}))}).")
    joins = {}
    for row in rows:
        name = row.get("joins")
        if not name:
            continue
        if name not in cohorts:
            raise ConfigError(f"{where}: row {row['animal']}/{row['session']}: column 'joins' "
                              f"is {name!r}, not a model of config field cohort_models "
                              f"({sorted(cohorts) or 'none configured'}).")
        joins[(row["animal"], row["session"])] = name
    return joins


# ---------------------------------------------------------------------- the step
def _cohort_names(model_path: Path, count: int) -> list[str]:
    """The cohort's session names from the provenance training wrote beside the model,
    else ``session <k>``."""
    record = model_path.with_name("provenance.json")
    try:
        names = json.loads(record.read_text())["params"]["sessions"]
    except (OSError, ValueError, KeyError, TypeError):
        names = None
    if not isinstance(names, list) or len(names) != count:
        return [f"session {k}" for k in range(count)]
    return [str(n) for n in names]


def _check_cohort_labels(model_path: Path, names: list[str], cohort: str) -> None:
    """The label set must be the one the cohort was trained with, when training recorded
    it (pipeline-trained models do, in ``provenance.json``)."""
    record = model_path.with_name("provenance.json")
    try:
        trained = json.loads(record.read_text())["params"]["labels"]["names"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if list(trained) != list(names):
        raise PipelineError(f"cohort model '{model_path}' was trained with labels {trained} "
                            f"(its {record.name}), but config field "
                            f"cohort_models.{cohort}.label_set gives {names}; set the label "
                            "set the cohort was trained with.")


def load_cohort_model(path: str | Path, device: str) -> Any:
    """A multi-session model that records its cohort, or a PipelineError naming ``path``."""
    model = load_model(path, device)
    if model.num_sessions_ is None:
        raise PipelineError(f"cohort model '{path}' is a single-session model; a session "
                            "joins a multi-session model (e.g. multi/<group>/.../model.pt).")
    if getattr(model, "cohort_anchors_", None) is None:
        raise PipelineError(f"cohort model '{path}' does not record its cohort's embeddings "
                            "(it was trained by an older cebra_pipe or without labels); "
                            "retrain it, or call model.record_cohort(X_list, y_list) with "
                            "the cohort's training data and save it again.")
    return model


def align_column(session: Any, names: list[str], align_label: str | None) -> tuple[str, int]:
    """The label that bins the consistency, and its column in the label set's array
    (continuous labels are concatenated in ``names`` order; a discrete label is its own)."""
    continuous = [n for n in names if session.label_type(n) == "continuous"]
    label = align_label if align_label in names else (continuous or names)[0]
    if label not in continuous:
        return label, 0
    column = sum(np.asarray(session.labels[n]).reshape(len(session.neural), -1).shape[1]
                 for n in continuous[:continuous.index(label)])
    return label, column


def _consistency_rows(model: Any, baseline: Any, neural: np.ndarray, labels: np.ndarray,
                      column: int, num_bins: int, session_id: int, segments) -> list[dict]:
    from cebra_pipe.sklearn.adapt import cohort_consistency

    scores = {}
    for kind, fitted in (("adapted", model), ("unadapted", baseline)):
        embedding = fitted.transform(neural, session_id=session_id, segments=segments)
        try:
            scores[kind] = cohort_consistency(embedding, labels, model.cohort_anchors_,
                                              label_column=column, num_bins=num_bins)
        except ValueError as err:
            raise PipelineError(f"consistency with the cohort: {err} (config field "
                                "consistency.num_bins)") from None
    return [{"cohort_session": k, "consistency_r2_pct": 100 * scores["adapted"][k],
             "unadapted_r2_pct": 100 * scores["unadapted"][k]} for k in scores["adapted"]]


def main(argv: Sequence[str] | None = None) -> None:
    from cebra_pipe.runtime import set_torch_threads

    args = _parser().parse_args(argv)
    if args.max_adapt_iterations < 0:
        raise PipelineError(f"--max-adapt-iterations must be >= 0, got "
                            f"{args.max_adapt_iterations}.")
    names = list(args.labels.get("names", [])) if isinstance(args.labels, dict) else []
    if not names:
        raise PipelineError(f"config field cohort_models.{args.cohort_name}.label_set: a "
                            "session joins a cohort by its labels; the label set is empty.")
    set_torch_threads(args.threads)
    model_path = Path(args.cohort_model)
    _check_cohort_labels(model_path, names, args.cohort_name)
    model = load_cohort_model(model_path, args.device)
    session = load_session(args.session)
    split = load_split(args.split, len(session.neural))
    labels = {part: training_labels(session, names, split[part]) for part in ("train", "valid")}
    neural = {part: session.neural[split[part]] for part in ("train", "valid")}
    segments = {part: session.segments_at(split[part]) for part in ("train", "valid")}
    session_id = model.num_sessions_
    cohort_names = _cohort_names(model_path, session_id)
    print(f"{STEP}: {session.name} joins cohort {args.cohort_name} ({cohort_names}) as "
          f"session {session_id}; labels {names}", flush=True)

    baseline = copy.deepcopy(model).set_params(max_adapt_iterations=0)
    model.set_params(max_adapt_iterations=args.max_adapt_iterations)
    try:
        baseline.fit(neural["train"], *labels["train"], segments=segments["train"],
                     adapt=True, session_id=session_id)
        model.fit(neural["train"], *labels["train"], segments=segments["train"], adapt=True,
                  session_id=session_id)
    except ValueError as err:
        raise PipelineError(f"session {session.name} cannot join cohort model "
                            f"'{model_path}' (cohort_models.{args.cohort_name}): {err}") from None

    label, column = align_column(session, names, args.align_label)
    values = labels["valid"][0]
    rows = _consistency_rows(model, baseline, neural["valid"], values, column, args.num_bins,
                             session_id, segments["valid"])
    table = [{"animal": session.meta["animal"], "session": session.meta["session"],
              "cohort": args.cohort_name, "cohort_session": cohort_names[r["cohort_session"]],
              "label": label, "split": "valid", **{k: v for k, v in r.items()
                                                   if k != "cohort_session"}}
             for r in rows]
    outdir = Path(args.outdir)
    outputs = [outdir / name for name in OUTPUTS]
    with all_or_nothing(outputs):
        model.save(outputs[0])
        save_npz(outputs[1], {
            part: model.transform(neural[part], session_id=session_id,
                                  segments=segments[part]).astype(np.float32)
            for part in ("train", "valid")} | {"session_id": np.array(session_id)})
        write_tsv(outputs[2], pd.DataFrame(table))
        write_provenance(outputs[3], STEP,
                         params={"cohort": args.cohort_name, "labels": names,
                                 "align_label": label, "num_bins": args.num_bins,
                                 "max_adapt_iterations": args.max_adapt_iterations,
                                 "session_id": session_id, "cohort_sessions": cohort_names,
                                 "device": args.device},
                         inputs=[args.cohort_model, args.session, args.split],
                         seeds=None if model.random_state is None else [model.random_state])
    for row in table:
        print(f"  consistency with {row['cohort_session']}: {row['consistency_r2_pct']:.1f} % "
              f"(unadapted input layer {row['unadapted_r2_pct']:.1f} %)", flush=True)


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
