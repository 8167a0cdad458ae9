"""``python -m cebra_pipe consistency-runs`` / ``consistency-datasets``.

* ``consistency-runs``: embeddings of one session from several seeds of the same
  configuration, compared sample by sample (``between="runs"``).
* ``consistency-datasets``: embeddings of several sessions, aligned by binning a
  label (``between="datasets"``); per seed, for single-session models (one embedding
  file per session) or a multi-session model (one ``embeddings.npz``). The mean over
  seeds is drawn.

Scores are linear-fit R^2 (%, via :func:`cebra_pipe.sklearn.metrics.consistency_score`).
Output: a long TSV (``seed, source, target, score``; ``seed = "mean"`` rows hold the
mean over seeds), a heat map PNG and a provenance JSON.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import numpy as np

from cebra_pipe.pipeline.arguments import parse_seeds
from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, atomic_output,
                                        check_embedding, load_embedding, load_npz,
                                        load_session, load_split, run, write_provenance,
                                        write_tsv)
from cebra_pipe.pipeline.labels import check_shared_range


def _parser(step: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {step}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--title", default="")
    parser.add_argument("--out", required=True, help="TSV to write")
    parser.add_argument("--figure", required=True, help="heat map PNG to write")
    parser.add_argument("--provenance", required=True)
    if step == "consistency-runs":
        parser.add_argument("--embeddings", nargs="+", required=True,
                            help="one embedding .npy per seed, in --seeds order")
    else:
        parser.add_argument("--sessions", nargs="+", required=True, help="session files")
        parser.add_argument("--splits", nargs="+", required=True, help="split files")
        parser.add_argument("--embeddings", nargs="+", required=True,
                            help="single: per session, per seed (session-major) .npy files; "
                                 "multi: one embeddings.npz per seed")
        parser.add_argument("--multi", action="store_true")
        parser.add_argument("--split", choices=["train", "valid"], default="train")
        parser.add_argument("--align-label", required=True)
        parser.add_argument("--num-bins", type=int, default=40)
    return parser


def _rows(seed: Any, scores: np.ndarray, pairs: np.ndarray) -> list[dict[str, Any]]:
    return [{"seed": seed, "source": str(a), "target": str(b), "score": float(s)}
            for s, (a, b) in zip(scores, pairs)]


def _with_mean(rows: list[dict[str, Any]]):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=["seed", "source", "target", "score"])
    if frame.empty:
        return frame
    frame["seed"] = frame["seed"].astype(str)
    mean = (frame.groupby(["source", "target"], sort=False)["score"].mean().reset_index()
            .assign(seed="mean"))
    return pd.concat([frame, mean[frame.columns]], ignore_index=True)


def _heatmap(frame: Any, ids: list[str], title: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cebra_pipe.plot import plot_consistency

    mean = frame[frame["seed"] == "mean"]
    size = 2.0 + 0.5 * len(ids)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), dpi=100)
    if len(mean):
        plot_consistency(mean["score"].to_numpy(), mean[["source", "target"]].to_numpy(),
                         np.array(ids), ax=ax, vmin=0, vmax=100, cmap="viridis",
                         text_color="auto", title=title)
    else:
        ax.text(0.5, 0.5, "not enough runs to compare", ha="center", va="center")
        ax.set_axis_off()
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def runs(args: argparse.Namespace) -> None:
    from cebra_pipe.sklearn.metrics import consistency_score

    seeds = parse_seeds(args.seeds)
    if len(args.embeddings) != len(seeds):
        raise PipelineError(f"got {len(args.embeddings)} embeddings for {len(seeds)} seeds.")
    if len(seeds) < 2:
        raise PipelineError("consistency between runs needs at least 2 seeds.")
    embeddings = [load_embedding(p) for p in args.embeddings]
    scores, pairs, _ = consistency_score(embeddings, between="runs")
    ids = [f"seed {s}" for s in seeds]
    pairs = np.array([[ids[int(a)], ids[int(b)]] for a, b in pairs])
    frame = _with_mean(_rows("all", scores * 100.0, pairs))
    frame = frame[frame["seed"] == "mean"].reset_index(drop=True)
    with all_or_nothing([args.out, args.figure, args.provenance]):
        write_tsv(args.out, frame)
        _heatmap(frame, ids, args.title or "between seeds", args.figure)
        write_provenance(args.provenance, "consistency-runs", params={"seeds": seeds},
                         inputs=args.embeddings, seeds=seeds)
    print(f"consistency between {len(seeds)} runs: mean {frame['score'].mean():.1f}%")


def datasets(args: argparse.Namespace) -> None:
    from cebra_pipe.sklearn.metrics import consistency_score

    seeds = parse_seeds(args.seeds)
    if len(args.sessions) != len(args.splits) or len(args.sessions) < 2:
        raise PipelineError("give at least 2 --sessions and one --splits file for each.")
    sessions = [load_session(p) for p in args.sessions]
    splits = [load_split(p, len(s.neural)) for p, s in zip(args.splits, sessions)]
    names = [s.name for s in sessions]
    labels = []
    for session, split in zip(sessions, splits):
        if args.align_label not in session.labels:
            raise PipelineError(f"session {session.name}: align label {args.align_label!r} is "
                                f"not in the session file ({sorted(session.labels)}).")
        values = session.labels[args.align_label][split[args.split]]
        labels.append(np.asarray(values, dtype=np.float64).reshape(len(values), -1)[:, 0])
    check_shared_range(sessions, args.align_label, "between-session consistency "
                       "(consistency.align_label)")
    rows: list[dict[str, Any]] = []
    if args.multi:
        if len(args.embeddings) != len(seeds):
            raise PipelineError(f"got {len(args.embeddings)} embeddings files for "
                                f"{len(seeds)} seeds.")
    elif len(args.embeddings) != len(seeds) * len(sessions):
        raise PipelineError(f"got {len(args.embeddings)} embeddings for {len(sessions)} "
                            f"sessions x {len(seeds)} seeds.")
    for k, seed in enumerate(seeds):
        if args.multi:
            data = load_npz(args.embeddings[k], "embeddings file")
            stored = [str(n) for n in data["sessions"]]
            missing = [n for n in names if n not in stored]
            if missing:
                raise PipelineError(f"'{args.embeddings[k]}' has no embeddings for {missing}.")
            embeddings = [check_embedding(data[f"{args.split}_{stored.index(n)}"],
                                          f"embeddings file '{args.embeddings[k]}', key "
                                          f"'{args.split}_{stored.index(n)}'") for n in names]
        else:
            embeddings = [load_embedding(args.embeddings[i * len(seeds) + k])
                          for i in range(len(sessions))]
        for name, emb, lab in zip(names, embeddings, labels):
            if len(emb) != len(lab):
                raise PipelineError(f"{name}: embedding has {len(emb)} rows but the "
                                    f"{args.split} split has {len(lab)}.")
        try:
            scores, pairs, _ = consistency_score(embeddings, between="datasets", labels=labels,
                                                 dataset_ids=names,
                                                 num_discretization_bins=args.num_bins)
        except ValueError as err:
            raise PipelineError(f"consistency between {names} aligned on "
                                f"{args.align_label!r} failed: {err} (lower "
                                "consistency.num_bins?)") from None
        rows += _rows(seed, scores * 100.0, pairs)
    frame = _with_mean(rows)
    with all_or_nothing([args.out, args.figure, args.provenance]):
        write_tsv(args.out, frame)
        _heatmap(frame, names, args.title or "between sessions", args.figure)
        write_provenance(args.provenance, "consistency-datasets",
                         params={"seeds": seeds, "align_label": args.align_label,
                                 "num_bins": args.num_bins, "split": args.split,
                                 "multi": args.multi},
                         inputs=list(args.sessions) + list(args.splits) + list(args.embeddings),
                         seeds=seeds)
    mean = frame[frame["seed"] == "mean"]["score"].mean()
    print(f"consistency between {len(names)} sessions: mean {mean:.1f}%")


def main_for(step: str, argv: Sequence[str] | None = None) -> None:
    args = _parser(step).parse_args(argv)
    (runs if step == "consistency-runs" else datasets)(args)


def cli_for(step: str, argv: Sequence[str] | None = None) -> int:
    return run(lambda a: main_for(step, a), argv, step)


def cli(argv: Sequence[str] | None = None) -> int:
    return cli_for("consistency-runs", argv)
