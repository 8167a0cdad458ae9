"""Helpers for the report notebooks (``notebooks/*.ipynb``): read results, draw, tabulate.

The notebooks stay short: each cell calls one of these functions with paths relative
to the working directory (the workflow's results folder).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

METRIC_NAMES = {"r2": "R²", "median_abs_error": "median |error|", "accuracy": "accuracy",
                "gof_bits": "GoF (bits)", "infonce": "InfoNCE"}


def setup() -> None:
    """Quiet warnings, inline PNG figures and compact tables."""
    import warnings

    import matplotlib

    warnings.filterwarnings("ignore")
    matplotlib.rcParams.update({"figure.dpi": 90, "savefig.dpi": 90, "font.size": 9})
    pd.set_option("display.max_rows", 200)
    pd.set_option("display.precision", 3)


def md(text: str) -> None:
    """Display Markdown."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_image(path: str | Path, caption: str | None = None) -> None:
    """Embed a PNG (or say that it is missing)."""
    from IPython.display import Image, display

    path = Path(path)
    if caption:
        md(f"**{caption}**")
    if path.is_file():
        display(Image(filename=str(path)))
    else:
        md(f"*not available: `{path}`*")


def read_tsv(path: str | Path) -> pd.DataFrame:
    """A TSV as a DataFrame; empty if the file is missing or empty."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, sep="\t")
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def read_many(paths: Iterable[str | Path]) -> pd.DataFrame:
    frames = [read_tsv(p) for p in paths]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def session_table(results: str | Path, animal: str, sessions: Sequence[str]) -> pd.DataFrame:
    """Size, labels and split of an animal's sessions, from the session and split files."""
    from cebra_pipe.pipeline.common import load_session, load_split

    rows = []
    for session in sessions:
        data = load_session(Path(results) / "sessions" / animal / f"{session}.npz")
        split = load_split(Path(results) / "splits" / animal / f"{session}.npz")
        meta = data.meta
        rows.append({"session": session, "group": meta.get("group", ""),
                     "time steps": meta["num_timesteps"], "neurons": meta["num_neurons"],
                     "labels": ", ".join(f"{k} ({v})" for k, v in
                                         sorted(meta["label_types"].items())),
                     "trials": meta.get("has_trial", False),
                     "train steps": len(split["train"]), "valid steps": len(split["valid"])})
    return pd.DataFrame(rows).set_index("session")


def mean_sd(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std():.3f}"


def decoding_summary(frame: pd.DataFrame, index: Sequence[str] = ("model", "labels")
                     ) -> pd.DataFrame:
    """Mean ± sd over seeds: rows = configurations, columns = (target, metric)."""
    if frame.empty:
        return frame
    frame = frame.copy()
    frame["score"] = [f"{t} {METRIC_NAMES.get(m, m)}" if t != "-" else METRIC_NAMES.get(m, m)
                      for t, m in zip(frame["target"], frame["metric"])]
    table = frame.pivot_table(index=list(index), columns="score", values="value",
                              aggfunc=mean_sd, sort=True)
    table.columns.name = None
    return table


def controls_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Controls table for display: real vs shuffled, mean ± sd, and the verdict."""
    if frame.empty:
        return frame
    out = frame.copy()
    out["metric"] = [f"{t} {METRIC_NAMES.get(m, m)}" if t != "-" else METRIC_NAMES.get(m, m)
                     for t, m in zip(out["target"], out["metric"])]
    out["real"] = [f"{m:.3f} ± {s:.3f}" if pd.notna(s) else f"{m:.3f}"
                   for m, s in zip(out["real_mean"], out["real_std"])]
    out["shuffled"] = [f"{m:.3f} ± {s:.3f}" if pd.notna(s) else f"{m:.3f}"
                       for m, s in zip(out["shuffled_mean"], out["shuffled_std"])]
    out["real labels better"] = np.where(out["real_better"], "yes", "no")
    keys = [k for k in ("animal", "session", "model", "label_set", "metric") if k in out]
    columns = ["real", "shuffled", "real labels better"]
    if "p_value" in out:  # training-null p-value, at least 1 / (1 + number of null models)
        out["null models"], out["p (training nulls)"] = out["num_nulls"], out["p_value"].round(3)
        columns += ["null models", "p (training nulls)"]
    return out[keys + columns].set_index(keys)


def plot_gof_curves(folder: str | Path, variants: Sequence[Sequence[str]], seeds: Sequence[int],
                    title: str = "") -> None:
    """Goodness of fit (bits) during training, one panel per configuration."""
    import matplotlib.pyplot as plt

    n = len(variants)
    cols = min(4, max(1, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.5 * rows), squeeze=False,
                             sharey=True)
    for ax, (model, labels) in zip(axes.flat, variants):
        for seed in seeds:
            loss = read_tsv(Path(folder) / model / labels / f"seed{seed}" / "loss.tsv")
            if "gof_bits" in loss:
                ax.plot(loss["step"], loss["gof_bits"], lw=0.8, label=f"seed {seed}")
        ax.set_title(f"{model} / {labels}", fontsize=9)
        ax.set_xlabel("iteration")
        ax.axhline(0, color="grey", lw=0.5)
    for ax in axes[:, 0]:
        ax.set_ylabel("GoF (bits)")
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    plt.show()


def plot_cohort_scores(frame: pd.DataFrame, target: str, metric: str, title: str = "") -> None:
    """Bar chart of one score per configuration, one bar group per session."""
    import matplotlib.pyplot as plt

    if frame.empty:
        md("*no decoding results*")
        return
    part = frame[(frame["target"] == target) & (frame["metric"] == metric)]
    if part.empty:
        md(f"*no {target} {metric} scores*")
        return
    part = part.assign(config=part["model"] + " / " + part["labels"],
                       sid=part["animal"] + "/" + part["session"])
    stats = part.groupby(["config", "sid"])["value"].agg(["mean", "std"]).unstack("sid")
    configs = list(stats.index)
    sids = list(stats["mean"].columns)
    width = 0.8 / max(1, len(sids))
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(configs) + 2), 3.2))
    x = np.arange(len(configs))
    for i, sid in enumerate(sids):
        ax.bar(x + i * width, stats["mean"][sid], width, yerr=stats["std"][sid].fillna(0),
               label=sid, capsize=2)
    ax.set_xticks(x + width * (len(sids) - 1) / 2)
    ax.set_xticklabels(configs, rotation=30, ha="right")
    name = METRIC_NAMES.get(metric, metric)
    ax.set_ylabel(f"{name} (valid)" if target == "-" else f"{target} {name} (valid)")
    ax.legend(fontsize=7, ncol=min(4, len(sids)))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    plt.show()


def runs_consistency_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean between-seed consistency (%) per session and configuration."""
    if frame.empty or "between" not in frame:
        return pd.DataFrame()
    part = frame[(frame["between"] == "runs") & (frame["seed"].astype(str) == "mean")]
    if part.empty:
        return pd.DataFrame()
    return (part.groupby(["animal", "session", "model", "labels"])["score"].mean()
            .unstack(["model", "labels"]).round(1))
