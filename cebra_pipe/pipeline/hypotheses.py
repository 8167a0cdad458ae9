"""``python -m cebra_pipe hypotheses-session`` and ``hypotheses``: which labels are encoded?

``hypotheses-session`` tests every label set's model of one session with evaluation
nulls (:mod:`cebra_pipe.hypothesis`): each seed's held-out goodness of fit and kNN
decoding scores of the label set's own labels are recomputed against ``num_nulls``
null orders of the held-out labels (circular shifts in time by at least
``min_shift``, samples or a duration converted with the session's sample period,
within trials when the session has them; or sample-wise permutations). Goodness of
fit is scored inside the held-out part's segments (no window or positive crosses a
trial change, dropped bins or a gap of the split). Scores are averaged over seeds,
p-values corrected across the label sets of the session (Holm or BH) and each test gets a verdict ("encoded" when the
corrected p < alpha). Raw-neural and PCA decoding baselines sit beside every decoding
score. Outputs: a TSV (see ``cebra_pipe.hypothesis.tables.SESSION_COLUMNS``), the
null distributions (``.npz``), a figure of them with the real scores, provenance.

``hypotheses-loao`` (optional, ``hypotheses.leave_one_out``) tests a group's
multi-session model animal by animal: trained on the other animals, the held-out
animal added through ``fit(adapt=True)``, its valid part decoded by the kNN decoder
fitted on the others' embeddings (:func:`cebra_pipe.hypothesis.leave_one_animal_out`),
with the within-animal score beside it and a circular-shift null (chance level, p).
Its rows (model ``"<model> (multi, leave-one-animal-out)"``, column ``within_animal``)
join the hypothesis tables.

``hypotheses`` gathers the session tables into ``<analysis>/tables/hypotheses.tsv``, the
cohort table (per group: animals supporting each label set, sign-flip test on the
per-animal effects) and the comparison of every pair of groups in the sheet.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.pipeline.arguments import parse_seeds
from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, atomic_output, json_arg,
                                        load_embedding, load_model, load_session, load_split, run,
                                        training_labels, write_provenance, write_tsv)
from cebra_pipe.pipeline.layout import seed_dir

SESSION_STEP, COHORT_STEP, LOAO_STEP = "hypotheses-session", "hypotheses", "hypotheses-loao"


def add_null_arguments(parser: argparse.ArgumentParser) -> None:
    """The seeds, null and correction options both hypothesis steps take."""
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--num-nulls", type=int, required=True)
    parser.add_argument("--null-kind", required=True)
    parser.add_argument("--min-shift", required=True,
                        help="samples (integer) or a duration such as '2 s' or '500 ms'")
    parser.add_argument("--bin-size", type=float, default=None,
                        help="seconds per sample of sessions without a time base")
    parser.add_argument("--within-trials", choices=["true", "false"], required=True)
    parser.add_argument("--correction", choices=["holm", "bh", "none"], required=True)
    parser.add_argument("--alpha", type=float, required=True)


def _session_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {SESSION_STEP}",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--session", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--dir", required=True,
                        help="the session's training folder (<dir>/<model>/<labels>/seed<k>/)")
    parser.add_argument("--variants", type=json_arg, required=True,
                        help='JSON list of {"model", "label_set", "names"} to test')
    add_null_arguments(parser)
    parser.add_argument("--smoothing", type=float, required=True,
                        help="Gaussian sigma (samples) of the raw-neural baseline")
    parser.add_argument("--units", type=json_arg, required=True, help="JSON label -> unit")
    parser.add_argument("--null-seed", type=int, required=True)
    parser.add_argument("--knn-neighbors", type=int, required=True)
    parser.add_argument("--gof-batches", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--nulls", required=True, help="null distributions (.npz)")
    parser.add_argument("--figure", required=True)
    parser.add_argument("--provenance", required=True)
    return parser


def _check_variants(variants: Any) -> list[dict[str, Any]]:
    if not isinstance(variants, list) or not variants:
        raise PipelineError("--variants must be a non-empty JSON list of "
                            '{"model", "label_set", "names"}.')
    for item in variants:
        if not isinstance(item, dict) or not {"model", "label_set", "names"} <= set(item) \
                or not item["names"]:
            raise PipelineError(f"--variants entry {item!r} needs 'model', 'label_set' and a "
                                "non-empty 'names' list.")
    return variants


def _values(session: Any, name: str, idx: np.ndarray) -> np.ndarray:
    """A decoding target at ``idx``, typed by the label's stored kind (the hypothesis
    functions score integer targets as classes and float ones as values): (time,) int64
    for discrete labels, (time,) or (time, d) float32 for continuous ones."""
    values = session.labels[name][idx]
    if session.label_type(name) == "discrete":
        return values.astype(np.int64, copy=False)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    return values.astype(np.float32, copy=False)


def _test_variant(args: argparse.Namespace, session: Any, split: dict[str, np.ndarray],
                  variant: dict[str, Any], seeds: list[int], inputs: list[str],
                  min_shift: int) -> list[tuple]:
    """(combined test, spread over seeds) for every score of one variant."""
    from cebra_pipe import hypothesis
    from cebra_pipe.hypothesis.tables import combine_seeds

    train, valid = split["train"], split["valid"]
    names = list(variant["names"])
    missing = [n for n in names if n not in session.labels]
    if missing:
        raise PipelineError(f"session {session.name}: label(s) {missing} of label set "
                            f"{variant['label_set']!r} are not in the session file.")
    targets = {n: (_values(session, n, train), _values(session, n, valid)) for n in names}
    trials = (session.trial[valid] if args.within_trials == "true" and session.trial is not None
              else None)
    folder = Path(args.dir) / variant["model"] / variant["label_set"]
    per_seed = []
    for seed in seeds:
        paths = [seed_dir(folder, seed) / f"embedding_{s}.npy" for s in ("train", "valid")]
        model_file = seed_dir(folder, seed) / "model.pt"
        inputs += [str(model_file)] + [str(p) for p in paths]
        model = load_model(model_file, args.device)
        embeddings = tuple(load_embedding(p) for p in paths)
        for part, emb, idx in (("train", embeddings[0], train), ("valid", embeddings[1], valid)):
            if len(emb) != len(idx):
                raise PipelineError(f"the {part} embedding '{seed_dir(folder, seed)}' has "
                                    f"{len(emb)} rows but the split has {len(idx)}; rerun "
                                    "training.")
        try:
            per_seed.append(hypothesis.evaluation_nulls(
                model, session.neural[train], session.neural[valid],
                training_labels(session, names, valid), targets, num_nulls=args.num_nulls,
                kind=args.null_kind, min_shift=min_shift, trials=trials,
                segments=session.segments_at(valid), neighbors=args.knn_neighbors,
                gof_batches=args.gof_batches, seed=args.null_seed, units=args.units, embeddings=embeddings))
        except ValueError as err:
            raise PipelineError(f"session {session.name}, {variant['model']}/"
                                f"{variant['label_set']} seed {seed}: {err}") from None
    dimension = embeddings[1].shape[1]
    baselines = hypothesis.baseline_scores(session.neural[train], session.neural[valid],
                                           targets, dimension, sigma=args.smoothing,
                                           neighbors=args.knn_neighbors)
    return [(test, spread, baselines) for test, spread in combine_seeds(per_seed)]


def _min_shift_samples(args: argparse.Namespace, session: Any) -> int:
    """``--min-shift`` in samples of ``session`` (durations use its sample period)."""
    from cebra_pipe.hypothesis import to_samples

    try:
        return to_samples(_number(args.min_shift), session.sample_period(args.bin_size),
                          "hypotheses.min_shift")
    except ValueError as err:
        raise PipelineError(f"session {session.name}: {err}") from None


def _number(text: str) -> int | str:
    """An integer command-line value as int (samples), anything else unchanged."""
    return int(text) if text.strip().isdigit() else text


def session_main(argv: Sequence[str] | None = None) -> None:
    import torch

    from cebra_pipe.hypothesis.tables import plot_null_distributions, session_table

    args = _session_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    seeds = parse_seeds(args.seeds)
    variants = _check_variants(args.variants)
    if not isinstance(args.units, dict):
        raise PipelineError("--units must be a JSON object label -> unit.")
    session = load_session(args.session)
    split = load_split(args.split, len(session.neural))
    inputs = [args.session, args.split]
    min_shift, period = _min_shift_samples(args, session), session.sample_period(args.bin_size)
    min_shift_s = float("nan") if period is None else min_shift * period
    rows, nulls = [], []
    for variant in variants:
        for test, spread, baselines in _test_variant(args, session, split, variant, seeds,
                                                     inputs, min_shift):
            rows.append({"animal": session.meta["animal"], "session": session.meta["session"],
                         "model": variant["model"], "label_set": variant["label_set"],
                         **test.row(), "real_std": spread, "num_seeds": len(seeds),
                         "null_kind": args.null_kind,
                         "min_shift": min_shift, "min_shift_s": min_shift_s,
                         "baseline_raw": baselines.get(("raw", test.target, test.metric),
                                                       np.nan),
                         "baseline_pca": baselines.get(("pca", test.target, test.metric),
                                                       np.nan)})
            nulls.append(test.null)
    table = session_table(rows, correction=args.correction, alpha=args.alpha)
    records = [dict(r, null=n, p_adjusted=p) for r, n, p in zip(rows, nulls, table["p_adjusted"])]
    figure = plot_null_distributions(
        records, title=f"{session.name}: real score (red) against {args.num_nulls} "
                       f"{args.null_kind.replace('_', ' ')} nulls")
    outputs = [args.out, args.nulls, args.figure, args.provenance]
    with all_or_nothing(outputs):
        write_tsv(args.out, table)
        with atomic_output(args.nulls) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, nulls=np.stack(nulls),
                         tests=np.array(json.dumps([{k: v for k, v in r.items() if k != "null"}
                                                    for r in records], default=float)))
        with atomic_output(args.figure) as tmp:
            figure.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
        write_provenance(args.provenance, SESSION_STEP,
                         params={k: v for k, v in vars(args).items()
                                 if k not in ("out", "nulls", "figure", "provenance")},
                         inputs=inputs, seeds=seeds)
    print(table[["model", "label_set", "target", "metric", "real", "null_median", "p_value",
                 "p_adjusted", "verdict"]].to_string(index=False))


def _cohort_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {COHORT_STEP}",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", nargs="+", required=True, help="session TSVs")
    parser.add_argument("--groups", type=json_arg, required=True,
                        help='JSON {"group": [["animal", "session"], ...]}')
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the cohort table (<analysis>/tables/hypotheses.tsv)")
    parser.add_argument("--cohort", required=True)
    parser.add_argument("--groups-out", required=True)
    parser.add_argument("--provenance", required=True)
    return parser


def cohort_main(argv: Sequence[str] | None = None) -> None:
    import pandas as pd

    from cebra_pipe.hypothesis.tables import SESSION_COLUMNS, cohort_table, group_table

    args = _cohort_parser().parse_args(argv)
    if not isinstance(args.groups, dict) or not args.groups:
        raise PipelineError("--groups must be a non-empty JSON object group -> sessions.")
    frames = []
    for path in args.inputs:
        try:
            frame = pd.read_csv(path, sep="\t", dtype={"animal": str, "session": str})
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise PipelineError(f"hypothesis table '{path}' is missing or unreadable: "
                                f"{err}") from None
        missing = set(SESSION_COLUMNS) - set(frame.columns)
        if missing:
            raise PipelineError(f"hypothesis table '{path}' lacks column(s) {sorted(missing)}; "
                                "was it written by `python -m cebra_pipe hypotheses-session`?")
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    groups = {g: [tuple(m) for m in members] for g, members in args.groups.items()}
    cohort = cohort_table(table, groups, alpha=args.alpha, seed=args.seed)
    comparison = group_table(table, groups, seed=args.seed)
    with all_or_nothing([args.out, args.cohort, args.groups_out, args.provenance]):
        write_tsv(args.out, table)
        write_tsv(args.cohort, cohort)
        write_tsv(args.groups_out, comparison)
        write_provenance(args.provenance, COHORT_STEP,
                         params={"groups": args.groups, "alpha": args.alpha, "seed": args.seed},
                         inputs=args.inputs)
    encoded = table[table["verdict"] == "encoded"]
    print(f"hypotheses: {len(encoded)}/{len(table)} tests 'encoded'; cohort table of "
          f"{len(cohort)} rows, {len(comparison)} group comparisons")


def _loao_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {LOAO_STEP}",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", nargs="+", required=True, help="the group's session files")
    parser.add_argument("--splits", nargs="+", required=True, help="their split files")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--label-set", required=True)
    parser.add_argument("--model", type=json_arg, required=True,
                        help="estimator parameters as JSON (the multi-session model's)")
    parser.add_argument("--names", type=json_arg, required=True,
                        help="JSON list of the label set's labels (trained on and decoded)")
    add_null_arguments(parser)
    parser.add_argument("--units", type=json_arg, required=True, help="JSON label -> unit")
    parser.add_argument("--null-seed", type=int, required=True)
    parser.add_argument("--knn-neighbors", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--provenance", required=True)
    return parser


def loao_model_name(model: str) -> str:
    """The ``model`` column of leave-one-animal-out rows: they are their own family of
    tests, apart from the single-session model of the same name."""
    return f"{model} (multi, leave-one-animal-out)"


def loao_main(argv: Sequence[str] | None = None) -> None:
    """Leave-one-animal-out decoding of one group's multi-session model and label set."""
    import torch

    from cebra_pipe import CEBRA, hypothesis
    from cebra_pipe.hypothesis.tables import session_table
    from cebra_pipe.pipeline.arguments import check_model_params

    args = _loao_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    params, seeds = check_model_params(args.model), parse_seeds(args.seeds)
    names = args.names
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PipelineError("--names must be a non-empty JSON list of label names.")
    if not isinstance(args.units, dict):
        raise PipelineError("--units must be a JSON object label -> unit.")
    if len(args.sessions) != len(args.splits):
        raise PipelineError(f"--sessions has {len(args.sessions)} files but --splits has "
                            f"{len(args.splits)}; give one split per session.")
    sessions = [load_session(p) for p in args.sessions]
    splits = [load_split(p, len(s.neural)) for p, s in zip(args.splits, sessions)]
    animals = [str(s.meta["animal"]) for s in sessions]
    if len(set(animals)) < 2:
        raise PipelineError(f"{LOAO_STEP}: the group has sessions of {sorted(set(animals))} "
                            "only; leaving one animal out needs at least two animals.")
    for session in sessions:
        _check_labels(session, names, args.label_set)
    trains, valids = [sp["train"] for sp in splits], [sp["valid"] for sp in splits]
    within = args.within_trials == "true"
    data = dict(
        animals=animals, X_train=[s.neural[t] for s, t in zip(sessions, trains)],
        y_train=[training_labels(s, names, t) for s, t in zip(sessions, trains)],
        X_valid=[s.neural[v] for s, v in zip(sessions, valids)],
        targets=[{n: (_values(s, n, t), _values(s, n, v)) for n in names}
                 for s, t, v in zip(sessions, trains, valids)],
        segments_train=[s.segments_at(t) for s, t in zip(sessions, trains)],
        segments_valid=[s.segments_at(v) for s, v in zip(sessions, valids)],
        trials_valid=[s.trial[v] if within and s.trial is not None else None
                      for s, v in zip(sessions, valids)],
        sample_periods=[s.sample_period(args.bin_size) for s in sessions])
    # The held-out animal's input layer trains as long as the model did.
    params.setdefault("max_adapt_iterations", params.get("max_iterations", 500))
    per_seed = []
    for seed in seeds:
        estimator = CEBRA(**params, device=args.device, random_state=seed)
        try:
            per_seed.append(hypothesis.leave_one_animal_out(
                estimator, **data, num_nulls=args.num_nulls, kind=args.null_kind,
                min_shift=_number(args.min_shift), neighbors=args.knn_neighbors,
                seed=args.null_seed, units=args.units))
        except ValueError as err:
            raise PipelineError(f"{LOAO_STEP} {args.model_name}/{args.label_set} seed {seed}: "
                                f"{err}") from None
        print(f"seed {seed}: {len(per_seed[-1])} leave-one-animal-out scores", flush=True)
    rows = _loao_rows(args, sessions, per_seed, len(seeds))
    table = session_table(rows, correction=args.correction, alpha=args.alpha)
    with all_or_nothing([args.out, args.provenance]):
        write_tsv(args.out, table)
        write_provenance(args.provenance, LOAO_STEP,
                         params={k: v for k, v in vars(args).items()
                                 if k not in ("out", "provenance")},
                         inputs=list(args.sessions) + list(args.splits), seeds=seeds)
    print(table[["animal", "session", "target", "metric", "real", "within_animal",
                 "null_median", "p_value", "verdict"]].to_string(index=False))


def _check_labels(session: Any, names: list[str], label_set: str) -> None:
    missing = [n for n in names if n not in session.labels]
    if missing:
        raise PipelineError(f"session {session.name}: label(s) {missing} of label set "
                            f"{label_set!r} are not in the session file.")


def _loao_rows(args: argparse.Namespace, sessions: list, per_seed: list, num_seeds: int
               ) -> list[dict[str, Any]]:
    """One row per session and score: seed-averaged test, within-animal score beside it."""
    from cebra_pipe.hypothesis.tables import combine_seeds

    rows = []
    first = per_seed[0]
    for k, transfer in enumerate(first):
        session = sessions[transfer.session]
        combined, spread = combine_seeds([[run[k].test] for run in per_seed])[0]
        period = session.sample_period(args.bin_size)
        shift = _min_shift_samples(args, session)
        rows.append({"animal": session.meta["animal"], "session": session.meta["session"],
                     "model": loao_model_name(args.model_name), "label_set": args.label_set,
                     **combined.row(), "real_std": spread, "num_seeds": num_seeds,
                     "null_kind": args.null_kind, "min_shift": shift,
                     "min_shift_s": float("nan") if period is None else shift * period,
                     "within_animal": float(np.mean([run[k].within for run in per_seed])),
                     "train_animals": len({s.meta["animal"] for s in sessions}) - 1})
    return rows


def cli_for(step: str, argv: Sequence[str] | None = None) -> int:
    mains = {SESSION_STEP: session_main, COHORT_STEP: cohort_main, LOAO_STEP: loao_main}
    return run(mains[step], argv, step)


def cli(argv: Sequence[str] | None = None) -> int:
    return cli_for(COHORT_STEP, argv)
