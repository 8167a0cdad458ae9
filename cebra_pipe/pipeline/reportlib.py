"""Helpers for the report notebooks (``notebooks/*.ipynb``): read results, draw, tabulate.

The notebooks stay short: each cell calls one of these functions with paths relative
to the working directory (the workflow's results folder).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cebra_pipe.pipeline.layout import Layout, is_shuffled

METRIC_NAMES = {"r2": "R²", "median_abs_error": "median |error|", "accuracy": "accuracy",
                "gof_bits": "GoF (bits)", "infonce": "InfoNCE"}
SD_NOTE = ("**±** is the standard deviation over seeds (a single number: one seed). "
           "Chance levels: accuracy 1/classes, R² 0, GoF 0 bits; errors are in the label's "
           "unit (config field `unit` of each label).")


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
    """Size, labels (kind, unit, normalisation) and split of an animal's sessions, from the
    session and split files."""
    from cebra_pipe.pipeline.common import load_session, load_split
    from cebra_pipe.pipeline.labels import describe_labels

    rows = []
    for session in sessions:
        data = load_session(Layout(results).session_file(animal, session))
        split = load_split(Layout(results).split_file(animal, session))
        meta = data.meta
        rows.append({"session": session, "group": meta.get("group", ""),
                     "time steps": meta["num_timesteps"], "neurons": meta["num_neurons"],
                     "labels": describe_labels(data),
                     "trials": meta.get("has_trial", False),
                     "train steps": len(split["train"]), "valid steps": len(split["valid"])})
    return pd.DataFrame(rows).set_index("session")


SPLIT_WARNING_TITLE = "Warning: the train/valid split may not represent the data"


def split_warnings(results: str | Path, sessions: Iterable[Sequence[str]]
                   ) -> dict[str, list[str]]:
    """The split step's warnings per ``(animal, session)``: ``"animal/session"`` -> messages
    (sessions without warnings left out)."""
    from cebra_pipe.pipeline.split import read_warnings

    found = {}
    for animal, session in sessions:
        messages = read_warnings(Path(results) / "splits" / animal / f"{session}.npz")
        if messages:
            found[f"{animal}/{session}"] = messages
    return found


def split_warnings_md(warnings: dict[str, list[str]]) -> str:
    """A Markdown warning box listing the sessions whose split is unrepresentative
    (``""`` when there are none)."""
    if not warnings:
        return ""
    lines = [f"> ⚠️ **{SPLIT_WARNING_TITLE}** in {len(warnings)} session(s): scores on "
             "the valid split may not hold for the whole session (config section `split`).",
             ">"]
    lines += [f"> - `{name}`: {message}" for name, messages in warnings.items()
              for message in messages]
    return "\n".join(lines)


def show_split_warnings(results: str | Path, sessions: Iterable[Sequence[str]]) -> None:
    """Display :func:`split_warnings_md` for ``sessions`` (nothing when all splits are fine)."""
    text = split_warnings_md(split_warnings(results, sessions))
    if text:
        md(text)


def mean_sd(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return ""
    if len(values) == 1:
        return f"{values.iloc[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std():.3f}"


def class_counts(results: str | Path, sessions: Iterable[Sequence[str]]
                 ) -> dict[tuple[str, str], dict[str, int]]:
    """Number of classes of each discrete label, per ``(animal, session)`` session file."""
    from cebra_pipe.pipeline.common import load_session

    counts = {}
    for animal, session in sessions:
        data = load_session(Layout(results).session_file(animal, session))
        counts[(animal, session)] = {
            name: int(len(np.unique(np.asarray(values).reshape(len(values), -1)[:, 0])))
            for name, values in data.labels.items()
            if data.meta["label_types"].get(name) == "discrete"}
    return counts


def chance_text(classes: Iterable[int]) -> str:
    """``"chance 0.25"`` for one class count, a range over sessions for several."""
    levels = sorted({1.0 / k for k in classes if k > 0})
    if not levels:
        return "chance 1/classes"
    if len(levels) == 1:
        return f"chance {levels[0]:.3g}"
    return f"chance 1/classes: {levels[0]:.3g}-{levels[-1]:.3g}"


def score_name(target: str, metric: str, units: dict[str, str] | None = None,
               classes: Iterable[int] = ()) -> str:
    """Column name of a score with its chance level or unit, e.g. ``position R² (chance 0)``."""
    name = METRIC_NAMES.get(metric, metric)
    if metric == "accuracy":
        name = f"{name} ({chance_text(classes)})"
    elif metric == "r2":
        name = f"{name} (chance 0)"
    elif metric == "median_abs_error":
        name = f"{name} ({(units or {}).get(target, 'label units')})"
    elif metric == "gof_bits":
        name = "GoF (bits, chance 0)"
    elif metric == "infonce":
        name = "InfoNCE (nats, lower is better)"
    return name if target == "-" else f"{target} {name}"


def _score_names(frame: pd.DataFrame, units: dict[str, str] | None,
                 classes: dict[tuple[str, str], dict[str, int]] | None) -> list[str]:
    """:func:`score_name` of every row, chance levels from the sessions in ``frame``."""
    sessions = (frame[["animal", "session"]].drop_duplicates().itertuples(index=False)
                if {"animal", "session"} <= set(frame) else [])
    per_target: dict[str, list[int]] = {}
    for animal, session in sessions:
        for label, count in (classes or {}).get((animal, session), {}).items():
            per_target.setdefault(label, []).append(count)
    return [score_name(t, m, units, per_target.get(t, ()))
            for t, m in zip(frame["target"], frame["metric"])]


def decoding_summary(frame: pd.DataFrame, index: Sequence[str] = ("model", "labels"),
                     units: dict[str, str] | None = None,
                     classes: dict[tuple[str, str], dict[str, int]] | None = None
                     ) -> pd.DataFrame:
    """Mean ± sd over seeds: rows = configurations, columns = target, metric and chance/unit.

    ``units``: label -> unit of its errors; ``classes``: ``(animal, session)`` -> discrete
    label -> number of classes (:func:`class_counts`), for the accuracy chance level.
    """
    if frame.empty:
        return frame
    frame = frame.copy()
    frame["score"] = _score_names(frame, units, classes)
    table = frame.pivot_table(index=list(index), columns="score", values="value",
                              aggfunc=mean_sd, sort=True)
    table.columns.name = None
    return table


def controls_summary(frame: pd.DataFrame, units: dict[str, str] | None = None,
                     classes: dict[tuple[str, str], dict[str, int]] | None = None
                     ) -> pd.DataFrame:
    """Controls table for display: real vs shuffled, mean ± sd, and the verdict."""
    if frame.empty:
        return frame
    out = frame.copy()
    out["metric"] = _score_names(out, units, classes)
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
    """Goodness of fit (bits above chance, 0 = chance) during training, one panel per
    configuration, one line per seed."""
    import matplotlib.pyplot as plt

    from cebra_pipe.pipeline.figures import training_curves_figure

    curves = {(model, labels): {
        seed: read_tsv(Layout.seed_file(str(Path(folder, model, labels)), seed, "loss.tsv"))
        for seed in seeds} for model, labels in variants}
    training_curves_figure(curves, "gof_bits", "GoF (bits, 0 = chance)", title, zero_line=True)
    plt.show()


def plot_cohort_scores(frame: pd.DataFrame, target: str, metric: str, title: str = "",
                       units: dict[str, str] | None = None,
                       classes: dict[tuple[str, str], dict[str, int]] | None = None) -> None:
    """Bar chart of one score per configuration, one bar group per session (mean ± sd
    over seeds), with the chance level as a dashed line."""
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
    name = _score_names(part.iloc[:1], units, classes)[0]
    counts = [c for (a, s), labels in (classes or {}).items() for t, c in labels.items()
              if t == target and f"{a}/{s}" in sids]
    chance = {"r2": 0.0, "gof_bits": 0.0}.get(metric, 1.0 / min(counts) if metric == "accuracy"
                                               and counts else None)
    if chance is not None:
        ax.axhline(chance, color="black", ls="--", lw=0.8, label=f"chance ({chance:.3g})")
    ax.set_ylabel(textwrap.fill(f"{name}, valid", 28))
    ax.legend(fontsize=7, ncol=min(4, len(sids) + 1))
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


def valid_labels(results: str | Path, animal: str, session: str) -> dict[str, np.ndarray]:
    """Each label's first column on the session's valid split: name -> (valid time,)."""
    from cebra_pipe.pipeline.common import load_session, load_split

    layout = Layout(results)
    data = load_session(layout.session_file(animal, session))
    split = load_split(layout.split_file(animal, session), len(data.neural))
    return {name: np.asarray(values, dtype=np.float64).reshape(len(values), -1)[
        split["valid"], 0] for name, values in data.labels.items()}


def show_interactive(traces: Sequence[tuple[str, np.ndarray, np.ndarray]], title: str,
                     color_title: str, max_points: int = 3000) -> None:
    """Interactive 3-D view (plotly) of embeddings, or a note when plotly is missing.

    plotly.js itself is not in the output: ``python -m cebra_pipe report`` inlines it
    once per page (:func:`cebra_pipe.pipeline.report.inline_plotly`).

    Parameters
    ----------
    traces : ``(name, embedding (time, dims), colour values (time,))`` per session
    title : figure title (user text: escaped, plotly renders some HTML tags)
    color_title : colour bar title (label and unit)
    max_points : points drawn per trace (evenly subsampled)
    """
    import html

    from IPython.display import HTML, display

    from cebra_pipe.pipeline.report import GENERATED_HTML
    from cebra_pipe.plot import plot_embedding_interactive

    try:
        import plotly  # noqa: F401  (optional dependency: the `interactive` extra)
    except ImportError:
        md("*Interactive 3-D view not available: install plotly "
           "(`pip install cebra_pipe[interactive]`) and rerun the report.*")
        return
    dims = traces[0][1].shape[1]
    figure = None
    for i, (name, embedding, values) in enumerate(traces):
        step = max(1, len(embedding) // max(1, max_points))
        one = plot_embedding_interactive(
            embedding[::step], embedding_labels=values[::step], markersize=2, alpha=0.7,
            cmap="viridis", idx_order=tuple(range(min(3, dims))), name=html.escape(name),
            figsize=(6.5, 4.2))
        if figure is None:
            figure = one
        else:
            figure.add_trace(one.data[0])
    cmin = min(float(np.nanmin(v)) for _, _, v in traces)
    cmax = max(float(np.nanmax(v)) for _, _, v in traces)
    figure.update_traces(marker={"cmin": cmin, "cmax": cmax, "showscale": False})
    figure.data[0].marker.update(showscale=True, colorbar={"title": html.escape(color_title)})
    axes = {f"{a}axis": {"title": f"dim {i + 1}"} for i, a in enumerate("xyz"[:min(3, dims)])}
    figure.update_layout(title=html.escape(title), showlegend=len(traces) > 1,
                         legend={"x": 0, "y": 0}, **({"scene": axes} if dims >= 3 else axes))
    body = figure.to_html(full_html=False, include_plotlyjs=False,
                          config={"displaylogo": False})
    display(HTML(f'<div class="cebra-pipe-3d">{body}</div>'), metadata={GENERATED_HTML: True})


def plot_multi_embeddings(results: str | Path, group: str, members: Sequence[Sequence[str]],
                          model: str, labels: str, seed: int, color_label: str | None,
                          unit: str = "", max_points: int = 3000) -> None:
    """A multi-session model's valid embeddings, one 3-D panel per session with a colour
    bar of ``color_label``, then the interactive view of all sessions together."""
    import matplotlib.pyplot as plt

    from cebra_pipe.plot import plot_embedding

    layout = Layout(results)
    path = Path(layout.seed_file(layout.multi_dir(group, model, labels), seed, "embeddings.npz"))
    if not path.is_file():
        md(f"*not available: `{path}`*")
        return
    with np.load(path, allow_pickle=False) as data:
        embeddings = [data[f"valid_{i}"] for i in range(len(members))]
    traces, cols = [], min(4, len(members))
    fig = plt.figure(figsize=(3.3 * cols, 3.0 * int(np.ceil(len(members) / cols))))
    for i, ((animal, session), embedding) in enumerate(zip(members, embeddings)):
        values = (valid_labels(results, animal, session)[color_label] if color_label
                  else np.arange(len(embedding), dtype=np.float64))
        step = max(1, len(embedding) // max(1, max_points))
        ax = fig.add_subplot(int(np.ceil(len(members) / cols)), cols, i + 1,
                             projection="3d" if embedding.shape[1] >= 3 else None)
        plot_embedding(embedding[::step], embedding_labels=values[::step], ax=ax,
                       markersize=2, alpha=0.6, cmap="viridis", axis="on",
                       title=f"{animal}/{session}",
                       idx_order=(0, 1, 2) if embedding.shape[1] >= 3 else (0, 1))
        ax.title.set_fontsize(9)
        fig.colorbar(ax.collections[-1], ax=ax, shrink=0.6, pad=0.12,
                     label=f"{color_label or 'time step'}" + (f" ({unit})" if unit else ""))
        traces.append((f"{animal}/{session}", embedding, values))
    dims = embeddings[0].shape[1] if embeddings else 0
    fig.suptitle(textwrap.fill(f"multi-session {model} / {labels}, group {group}: valid "
                               f"embeddings, seed {seed}, dimensions 1-{min(3, dims)} of "
                               f"{dims}", 90), fontsize=9)
    fig.tight_layout()
    plt.show()
    if traces:
        show_interactive(traces, f"multi-session {model} / {labels} ({group}), interactive",
                         f"{color_label or 'time step'}" + (f" ({unit})" if unit else ""),
                         max_points)


def _consistency_extremes(frame: pd.DataFrame, between: str) -> str:
    """``highest for A (x %), lowest for B (y %)`` of the mean consistency per scope."""
    part = frame[(frame["between"] == between) & (frame["seed"].astype(str) == "mean")
                 & ~frame["labels"].astype(str).map(is_shuffled)]
    if between == "sessions":
        part = part[part["source"] != part["target"]]
    if part.empty:
        return ""
    where = (part["animal"] + "/" + part["session"] if between == "runs"
             else part["kind"] + "-session, group " + part["group"].astype(str))
    means = part.assign(where=where + ", " + part["model"] + " / " + part["labels"]).groupby(
        "where")["score"].mean().sort_values()
    if len(means) == 1:
        return f"{means.index[0]} ({means.iloc[0]:.0f} %)"
    return (f"highest for {means.index[-1]} ({means.iloc[-1]:.0f} %), lowest for "
            f"{means.index[0]} ({means.iloc[0]:.0f} %)")


def overview_summary(animals: Sequence[str], sessions: Sequence[Sequence[str]],
                     variants: Sequence[Sequence[str]], multi_variants: Sequence[Sequence[str]],
                     seeds: Sequence[int], iterations: dict[str, int],
                     hypotheses: pd.DataFrame, cohort: pd.DataFrame, groups: pd.DataFrame,
                     consistency: pd.DataFrame) -> str:
    """The overview's written summary (Markdown): what was run, which label sets each
    animal supports, where consistency is high or low, links to the animals' pages."""
    from cebra_pipe.hypothesis import tables as ht

    models = sorted({m for m, _ in list(variants) + list(multi_variants)})
    parts = [f"**What was run.** {len(sessions)} session(s) of {len(animals)} animal(s); "
             f"{len(variants)} single-session and {len(multi_variants)} multi-session "
             "configuration(s) (model / label set, shuffled-label controls included) of the "
             "model(s) " + ", ".join(f"{m} ({iterations.get(m, '?')} iterations)"
                                     for m in models)
             + f"; seeds {', '.join(map(str, seeds))}."]
    parts.append("**Label sets.** " + ht.summary_paragraph(hypotheses, cohort, groups))
    gof = (hypotheses[hypotheses["metric"] == "gof_bits"] if not hypotheses.empty
           else hypotheses)
    for label_set, part in (gof.groupby("label_set") if not gof.empty else []):
        encoded = part.groupby("animal")["verdict"].apply(lambda v: (v == ht.ENCODED).all())
        parts.append(f"*{label_set}* is supported (every session encoded) in "
                     + (", ".join(encoded.index[encoded]) or "no animal")
                     + (f"; not in {', '.join(encoded.index[~encoded])}"
                        if (~encoded).any() else "") + ".")
    runs = _consistency_extremes(consistency, "runs") if not consistency.empty else ""
    between = (_consistency_extremes(consistency, "sessions") if not consistency.empty
               else "")
    if runs or between:
        parts.append("**Consistency** (R² of a linear map between two embeddings, in %; "
                     "100 = the same embedding up to a linear map) between seeds is "
                     + (runs or "not computed")
                     + ("; between sessions " + between if between else "") + ".")
    parts.append("**Per-animal reports:** " + ", ".join(f"[{a}]({a}.html)" for a in animals)
                 + ".")
    return "\n\n".join(parts)


COHORT_JOIN_NOTE = ("R² (%) of the best linear map from the session's valid-split embedding "
                    "to each cohort session's embedding, both averaged in bins of the align "
                    "label (100 % = the same space up to a linear map). Chance level: the "
                    "same score with the session's input layer left as initialised "
                    "(**unadapted**) on the cohort's frozen encoder.")


def cohort_join_table(results: str | Path, animal: str, joins: dict[str, str]) -> pd.DataFrame:
    """Consistency (%) of each joined session with every session of its cohort model,
    adapted and unadapted (chance), from ``cohorts/<cohort>/<animal>/<session>/``.

    ``joins``: session -> cohort model name (the sheet's ``joins`` column).
    """
    layout = Layout(results)
    frame = read_many(layout.joined_dir(cohort, animal, session, "consistency.tsv")
                      for session, cohort in joins.items())
    if frame.empty:
        return frame
    return frame.rename(columns={"consistency_r2_pct": "consistency R² (%)",
                                 "unadapted_r2_pct": "unadapted (chance) R² (%)"}).round(1)


def show_cohort_joins(results: str | Path, animal: str, joins: dict[str, str]) -> None:
    """The report section of sessions joined to a trained cohort model: a table and a
    bar chart of their consistency with each cohort session against chance."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    if not joins:
        md("*no session of this animal joins a cohort model (sheet column `joins`)*")
        return
    table = cohort_join_table(results, animal, joins)
    if table.empty:
        md("*not available: no consistency.tsv of the joined sessions*")
        return
    md(COHORT_JOIN_NOTE)
    display(table.set_index(["session", "cohort", "cohort_session"]))
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(table), 2.6))
    names = [f"{r.session}→{r.cohort_session}" for r in table.itertuples()]
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["consistency R² (%)"], 0.4, label="adapted")
    ax.bar(x + 0.2, table["unadapted (chance) R² (%)"], 0.4, color="0.7",
           label="unadapted (chance)")
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("consistency R² (%)")
    ax.set_ylim(min(0.0, float(table.filter(like="R²").min().min())), 100)
    ax.legend(fontsize=7, loc="lower right")
    plt.show()
