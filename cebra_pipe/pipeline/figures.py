"""``python -m cebra_pipe figures``: loss curves and embeddings of one session.

* ``loss.png``: one panel per trained configuration (model / label set), one line
  per seed (the InfoNCE loss per iteration).
* ``embeddings.png``: the first seed's valid-split embeddings, one row per label of the
  session (the colour, with a colour bar in the label's unit) and one column per
  configuration; the first three dimensions are drawn (the title says of how many).

Both are registered in the Snakemake report and shown in the animal's notebook.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.pipeline.arguments import parse_seeds
from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, atomic_output,
                                        json_arg, load_session, write_provenance,
                                        load_split, run)
from cebra_pipe.pipeline.layout import seed_dir

STEP = "figures"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", required=True,
                        help="the session's training folder (<model>/<labels>/seed<k>/ inside)")
    parser.add_argument("--variants", type=json_arg, required=True,
                        help='JSON list of [model, labels] pairs')
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--units", type=json_arg, default={},
                        help='JSON object label -> unit, shown on the colour bars')
    parser.add_argument("--max-points", type=int, default=3000)
    parser.add_argument("--loss-figure", required=True)
    parser.add_argument("--embedding-figure", required=True)
    parser.add_argument("--provenance", default=None, help="provenance JSON to write")
    return parser


def _grid(n: int, width: int = 4) -> tuple[int, int]:
    cols = min(n, width)
    return max(1, math.ceil(n / cols)), max(1, cols)


def _save(fig, path: str) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})


def _embedding_figure(folder: Path, variants: Sequence[tuple[str, str]], seed: int,
                      colors: dict[str, np.ndarray], units: dict[str, str], step: int,
                      discrete: frozenset[str] = frozenset()):
    """Rows = colour labels, columns = configurations, each panel with a colour bar.

    ``colors``: label -> (valid time,) values; every ``step``-th point is drawn;
    labels in ``discrete`` get a qualitative colour map and a bar ticked at each class.
    """
    import matplotlib.pyplot as plt

    from cebra_pipe.plot import plot_embedding

    embeddings = {}
    for model, labels in variants:
        path = seed_dir(folder / model / labels, seed) / "embedding_valid.npy"
        try:
            embeddings[model, labels] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise PipelineError(f"embedding file '{path}' is missing or corrupt: {err}") from None
    fig = plt.figure(figsize=(3.4 * len(variants), 3.1 * len(colors)), dpi=100)
    for row, (name, values) in enumerate(colors.items()):
        classes = np.unique(values) if name in discrete else None
        bar_label = f"{name} (class)" if name in discrete else (
            f"{name} ({units[name]})" if units.get(name) else name)
        for col, (model, labels) in enumerate(variants):
            embedding = embeddings[model, labels]
            dims = embedding.shape[1]
            ax = fig.add_subplot(len(colors), len(variants), row * len(variants) + col + 1,
                                 projection="3d" if dims >= 3 else None)
            plot_embedding(embedding[::step], embedding_labels=values[::step], ax=ax,
                           markersize=2, alpha=0.6, axis="on",
                           cmap="tab10" if name in discrete else "viridis",
                           title=f"{model} / {labels}\ndims 1-{min(3, dims)} of {dims}",
                           idx_order=(0, 1, 2) if dims >= 3 else (0, 1))
            ax.title.set_fontsize(8)
            ax.tick_params(labelsize=6)
            bar = fig.colorbar(ax.collections[-1], ax=ax, shrink=0.6, pad=0.15,
                               label=bar_label)
            if classes is not None and len(classes) <= 12:
                bar.set_ticks(classes)
    return fig


def training_curves_figure(curves: Mapping[tuple[str, str], Mapping[int, Any]], column: str,
                           ylabel: str, title: str = "", zero_line: bool = False):
    """Training curves from ``loss.tsv`` tables: one panel per variant, one line per seed.

    Parameters
    ----------
    curves
        ``(model, labels) -> {seed: table}``, each table (a DataFrame) with a ``step``
        column; tables without ``column`` draw no line.
    column, ylabel
        The column to draw (``loss`` or ``gof_bits``) and its axis label with unit.
    title
        The figure's title.
    zero_line
        Draw y = 0 (chance for goodness of fit in bits).
    """
    import matplotlib.pyplot as plt

    rows, cols = _grid(len(curves))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), dpi=100,
                             squeeze=False, sharey=True)
    for ax, ((model, labels), tables) in zip(axes.flat, curves.items()):
        for seed, table in tables.items():
            if column in table:
                ax.plot(table["step"], table[column], lw=0.8, label=f"seed {seed}")
        ax.set_title(f"{model} / {labels}", fontsize=9)
        ax.set_xlabel("iteration")
        if zero_line:
            ax.axhline(0, color="grey", lw=0.5)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    if axes.flat[0].lines:
        axes.flat[0].legend(fontsize=7)
    for ax in list(axes.flat)[len(curves):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    seeds = parse_seeds(args.seeds)
    variants = [tuple(v) for v in args.variants]
    if not variants:
        raise PipelineError("--variants is empty.")
    session = load_session(args.session)
    split = load_split(args.split, len(session.neural))
    if not isinstance(args.units, dict):
        raise PipelineError("--units must be a JSON object label -> unit.")
    folder = Path(args.dir)
    # Every label colours a row of panels; without labels, time does.
    colors = {name: np.asarray(values, dtype=np.float64).reshape(len(values), -1)[
        split["valid"], 0] for name, values in sorted(session.labels.items())} or {
        "time step": np.asarray(split["valid"], dtype=np.float64)}

    curves: dict[tuple[str, str], dict[int, pd.DataFrame]] = {}
    for model, labels in variants:
        for seed in seeds:
            path = seed_dir(folder / model / labels, seed) / "loss.tsv"
            try:
                curves.setdefault((model, labels), {})[seed] = pd.read_csv(path, sep="\t")
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
                raise PipelineError(f"loss file '{path}' is missing or unreadable: {err}") from None
    fig = training_curves_figure(curves, "loss", "InfoNCE loss (nats)",
                                 f"{session.name}: training loss")

    discrete = frozenset(n for n, kind in session.meta["label_types"].items()
                         if kind == "discrete")
    efig = _embedding_figure(folder, variants, seeds[0], colors, args.units,
                             max(1, len(split["valid"]) // max(1, args.max_points)), discrete)
    efig.suptitle(f"{session.name}: valid embeddings (seed {seeds[0]}), one row per label",
                  fontsize=10)
    efig.tight_layout()
    inputs = [args.session, args.split] + [
        str(seed_dir(folder / m / lab, s) / name) for m, lab in variants for s in seeds
        for name in ("loss.tsv",)] + [
        str(seed_dir(folder / m / lab, seeds[0]) / "embedding_valid.npy") for m, lab in variants]
    outputs = [args.loss_figure, args.embedding_figure] + (
        [args.provenance] if args.provenance else [])
    with all_or_nothing(outputs):
        _save(fig, args.loss_figure)
        _save(efig, args.embedding_figure)
        if args.provenance:
            write_provenance(args.provenance, STEP,
                             params={"variants": variants, "units": args.units,
                                     "max_points": args.max_points},
                             inputs=inputs, seeds=seeds)
    plt.close("all")
    print(f"figures for {session.name}: {args.loss_figure}, {args.embedding_figure}")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
