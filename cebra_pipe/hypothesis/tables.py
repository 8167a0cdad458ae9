"""Session, cohort and group tables of hypothesis tests, and their figures.

* :func:`session_table` combines the tests of one session's models over seeds, adds
  the multiple-testing correction across label sets and the verdict;
* :func:`cohort_table` counts, per group, the animals supporting each label set and
  runs the sign-flip test on the per-animal effects;
* :func:`group_table` compares every pair of groups on the per-animal effects;
* :func:`plot_null_distributions` draws each test's null with the real score marked.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cebra_pipe.hypothesis.evaluation import METRIC_INFO, NullTest
from cebra_pipe.hypothesis.stats import (adjust_p_values, compare_groups, sign_flip_test,
                                         smallest_p_value)

__all__ = ["ENCODED", "NOT_SUPPORTED", "SESSION_COLUMNS", "combine_seeds", "session_table",
           "cohort_table", "group_table", "plot_null_distributions", "verdict_table",
           "method_note", "summary_paragraph"]

ENCODED, NOT_SUPPORTED = "encoded", "not supported"
SESSION_COLUMNS = ["animal", "session", "model", "label_set", "target", "metric", "unit",
                   "real", "real_std", "num_seeds", "null_median", "effect", "p_value",
                   "p_adjusted", "verdict", "correction", "alpha", "null_kind", "num_nulls",
                   "min_p", "baseline_raw", "baseline_pca"]
_FAMILY = ["animal", "session", "model", "metric"]


def combine_seeds(per_seed: Sequence[Sequence[NullTest]]) -> list[tuple[NullTest, float]]:
    """One test per score from the tests of several seeds' models.

    The real score is the mean over seeds; null ``k`` is the mean over seeds of each
    seed's null ``k`` (every seed is scored against the same null label orders), so
    the p-value is that of the seed-averaged score.

    Returns
    -------
    list of (combined test, standard deviation of the real score over seeds)
    """
    if not per_seed:
        raise ValueError("no tests to combine (no seeds).")
    keys = [(t.metric, t.target) for t in per_seed[0]]
    for tests in per_seed[1:]:
        if [(t.metric, t.target) for t in tests] != keys:
            raise ValueError("every seed must be tested on the same metrics and targets.")
    out = []
    for i, first in enumerate(per_seed[0]):
        reals = np.array([tests[i].real for tests in per_seed])
        null = np.mean([tests[i].null for tests in per_seed], axis=0)
        spread = float(reals.std(ddof=1)) if len(reals) > 1 else 0.0
        out.append((NullTest(first.metric, first.target, first.unit, float(reals.mean()), null),
                    spread))
    return out


def session_table(rows: Sequence[Mapping[str, Any]], *, correction: str = "holm",
                  alpha: float = 0.05) -> Any:
    """The session table (:data:`SESSION_COLUMNS`) with corrected p-values and verdicts.

    Parameters
    ----------
    rows : one mapping per test with at least ``animal, session, model, label_set,
        target, metric, real, null_median, effect, p_value, num_nulls``
    correction : "holm", "bh" or "none", applied across the label sets of one session
        (one family per animal, session, model and metric)
    alpha : significance level of the verdict (on the corrected p-value)
    """
    import pandas as pd

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=SESSION_COLUMNS)
    frame["p_adjusted"] = np.nan
    for _, index in frame.groupby(_FAMILY, sort=False).groups.items():
        frame.loc[index, "p_adjusted"] = adjust_p_values(frame.loc[index, "p_value"].to_numpy(),
                                                         correction)
    frame["verdict"] = np.where(frame["p_adjusted"] < alpha, ENCODED, NOT_SUPPORTED)
    frame["correction"], frame["alpha"] = correction, alpha
    frame["min_p"] = [smallest_p_value(n) for n in frame["num_nulls"]]
    for column in SESSION_COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    return frame[SESSION_COLUMNS + [c for c in frame.columns if c not in SESSION_COLUMNS]]


def _oriented(frame: Any) -> Any:
    """Effects with the sign flipped for lower-is-better metrics (positive = better)."""
    sign = frame["metric"].map(lambda m: 1.0 if METRIC_INFO.get(m, (True,))[0] else -1.0)
    return frame["effect"] * sign


def _animal_effects(table: Any, members: Sequence[tuple[str, str]]) -> Any:
    """Per animal and test: mean oriented effect over its sessions, and whether every
    one of its sessions was 'encoded'."""
    wanted = {(str(a), str(s)) for a, s in members}
    keep = [(str(a), str(s)) in wanted for a, s in zip(table["animal"], table["session"])]
    part = table[keep].assign(oriented=lambda f: _oriented(f),
                              encoded=lambda f: f["verdict"] == ENCODED)
    keys = ["model", "label_set", "target", "metric", "animal"]
    return part.groupby(keys, sort=True).agg(effect=("oriented", "mean"),
                                             encoded=("encoded", "all")).reset_index()


COHORT_COLUMNS = ["group", "model", "label_set", "target", "metric", "num_animals",
                  "animals_encoded", "mean_effect", "sign_flip_p", "exact", "verdict"]


def cohort_table(table: Any, groups: Mapping[str, Sequence[tuple[str, str]]], *,
                 alpha: float = 0.05, seed: int = 0) -> Any:
    """Per group and test: animals supporting the label set and a sign-flip test.

    ``mean_effect`` is oriented (positive = better than the null for every metric);
    ``sign_flip_p`` tests that it is > 0 across animals (exact with up to 13 animals).
    """
    import pandas as pd

    rows = []
    for group, members in groups.items():
        effects = _animal_effects(table, members)
        for key, part in effects.groupby(["model", "label_set", "target", "metric"], sort=True):
            values = part["effect"].to_numpy(dtype=float)
            p = sign_flip_test(values, seed=seed)
            rows.append({"group": group, **dict(zip(["model", "label_set", "target", "metric"],
                                                    key)),
                         "num_animals": len(values), "animals_encoded": int(part["encoded"].sum()),
                         "mean_effect": float(values.mean()), "sign_flip_p": p,
                         "exact": 2 ** len(values) <= 9999,
                         "verdict": ENCODED if p < alpha else NOT_SUPPORTED})
    return pd.DataFrame(rows, columns=COHORT_COLUMNS)


GROUP_COLUMNS = ["group_a", "group_b", "model", "label_set", "target", "metric", "num_a",
                 "num_b", "mean_a", "mean_b", "difference", "cohens_d", "ci_low", "ci_high",
                 "confidence", "p_value"]


def group_table(table: Any, groups: Mapping[str, Sequence[tuple[str, str]]], *,
                seed: int = 0) -> Any:
    """Every pair of groups compared on per-animal oriented effects (``a - b``)."""
    import pandas as pd

    effects = {g: _animal_effects(table, m) for g, m in groups.items()}
    keys = ["model", "label_set", "target", "metric"]
    rows = []
    for a, b in itertools.combinations(sorted(groups), 2):
        merged = {k: p["effect"].to_numpy(float) for k, p in effects[a].groupby(keys)}
        for key, part in effects[b].groupby(keys):
            if key not in merged:
                continue
            x, y = merged[key], part["effect"].to_numpy(float)
            row = {"group_a": a, "group_b": b, **dict(zip(keys, key)), "num_a": len(x),
                   "num_b": len(y), "mean_a": float(x.mean()), "mean_b": float(y.mean()),
                   "difference": float(x.mean() - y.mean())}
            if len(x) >= 2 and len(y) >= 2:  # else no test: the row says so with NaNs
                result = compare_groups(x, y, seed=seed)
                row |= {"cohens_d": result.cohens_d, "ci_low": result.ci_low,
                        "ci_high": result.ci_high, "confidence": result.confidence,
                        "p_value": result.p_value}
            rows.append(row)
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def verdict_table(table: Any) -> Any:
    """The reader's view of a session table: label set, metric with unit, real, null
    median, effect, p, corrected p, verdict, and the raw/PCA baselines."""
    view = table.copy()
    view["metric"] = [f"{m} ({u})" if t == "-" else f"{m} of {t} ({u})"
                      for m, t, u in zip(view["metric"], view["target"], view["unit"])]
    columns = ["animal", "session", "model", "label_set", "metric", "real", "real_std",
               "null_median", "effect", "p_value", "p_adjusted", "verdict", "baseline_raw",
               "baseline_pca"]
    if "within_animal" in view and view["within_animal"].notna().any():
        # leave-one-animal-out rows: the held-out animal's own decoder beside the score
        columns.insert(columns.index("null_median"), "within_animal")
    return view[columns].round(4)


def plot_null_distributions(tests: Sequence[Mapping[str, Any]], title: str = "") -> Any:
    """One panel per test: histogram of the null, the real score as a red line.

    Parameters
    ----------
    tests : mappings with ``label_set, metric, target, unit, real, null (num_nulls,),
        p_value`` (and optionally ``p_adjusted``); one row of panels per label set

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label_sets = list(dict.fromkeys(t["label_set"] for t in tests)) or ["-"]
    columns = max([sum(t["label_set"] == s for t in tests) for s in label_sets] + [1])
    fig, axes = plt.subplots(len(label_sets), columns, squeeze=False,
                             figsize=(3.2 * columns, 2.4 * len(label_sets)))
    for ax in axes.ravel():
        ax.set_visible(False)
    for r, label_set in enumerate(label_sets):
        for c, test in enumerate(t for t in tests if t["label_set"] == label_set):
            ax = axes[r, c]
            ax.set_visible(True)
            ax.hist(np.asarray(test["null"]), bins=30, color="0.7", label="null")
            ax.axvline(test["real"], color="crimson", lw=2, label="real")
            corrected = "p_adjusted" in test
            p = test["p_adjusted"] if corrected else test["p_value"]
            what = test["metric"] if test["target"] == "-" else f"{test['metric']} {test['target']}"
            ax.set_title(f"{label_set}: {what}\n{'corrected ' if corrected else ''}p = {p:.3g}",
                         fontsize=8)
            ax.set_xlabel(test["unit"], fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _nulls_phrase(table: Any) -> str:
    kinds = ", ".join(sorted({str(k).replace("_", " ") for k in table["null_kind"]}))
    nulls = sorted({int(n) for n in table["num_nulls"]})
    shift = ""
    if "min_shift" in table and "circular" in kinds:
        seconds = table["min_shift_s"].min() if "min_shift_s" in table else np.nan
        shift = (" (held-out labels rotated in time by at least "
                 f"{int(table['min_shift'].min())} samples"
                 f"{f', at least {seconds:.3g} s' if np.isfinite(seconds) else ''})")
    return (f"{'/'.join(map(str, nulls))} {kinds} null(s) per model{shift}; the smallest "
            f"attainable p-value is {min(smallest_p_value(n) for n in nulls):.4f}")


def method_note(table: Any) -> str:
    """A paragraph saying how the tests of a session table were done."""
    if table.empty:
        return "*No label-set models were tested.*"
    correction = {"holm": "Holm-corrected", "bh": "Benjamini-Hochberg-corrected",
                  "none": "uncorrected"}.get(str(table["correction"].iloc[0]), "corrected")
    return (f"Each held-out score of the trained models (averaged over seeds) is compared with "
            f"{_nulls_phrase(table)}. p = (1 + #nulls at least as good) / (1 + #nulls), "
            f"{correction} across the label sets of the session; **encoded** when the "
            f"corrected p < {float(table['alpha'].iloc[0]):g}. Effect = real - null median "
            "(negative is better for errors). Baselines: the same kNN decoder on the smoothed "
            "neural data (raw) and on its PCA with the embedding's dimension.")


def _transfer_sentences(table: Any) -> list[str]:
    """One sentence per leave-one-animal-out model and label set (R^2 rows)."""
    if "within_animal" not in table:
        return []
    rows = table[table["within_animal"].notna() & (table["metric"] == "r2")]
    out = []
    for (model, label_set), part in rows.groupby(["model", "label_set"]):
        encoded = int((part["verdict"] == ENCODED).sum())
        out.append(f"Model {model}, label set **{label_set}**: {encoded} of {len(part)} "
                   f"held-out session(s) are decoded above chance by a decoder trained on the "
                   f"other animals (mean R^2 {part['real'].mean():.2f} against "
                   f"{part['within_animal'].mean():.2f} with the animal's own decoder; "
                   f"chance, the null median, {part['null_median'].mean():.2f}).")
    return out


def summary_paragraph(table: Any, cohort: Any, groups: Any) -> str:
    """A plain-language paragraph of the whole analysis for the top of the overview."""
    if table.empty:
        return "No label sets were tested (no CEBRA-Behavior models in the config)."
    sessions = table[["animal", "session"]].drop_duplicates()
    gof = table[table["metric"] == "gof_bits"]
    parts = [f"We tested {table['label_set'].nunique()} label set(s) in {len(sessions)} "
             f"session(s) of {table['animal'].nunique()} animal(s), with {_nulls_phrase(table)}."]
    for (model, label_set), part in gof.groupby(["model", "label_set"]):
        encoded = part[part["verdict"] == ENCODED]
        parts.append(f"Label set **{label_set}** ({model} model) fits the held-out data better "
                     f"than its nulls in {len(encoded)} of {len(part)} session(s).")
    for _, row in cohort[cohort["metric"] == "gof_bits"].iterrows():
        parts.append(f"In group {row['group']}, {int(row['animals_encoded'])} of "
                     f"{int(row['num_animals'])} animal(s) support {row['label_set']}; the "
                     f"sign-flip test across animals gives p = {row['sign_flip_p']:.3g} "
                     f"({row['verdict']}; with {int(row['num_animals'])} animal(s) the "
                     f"smallest possible p is {0.5 ** int(row['num_animals']):.3g}).")
    parts += _transfer_sentences(table)
    tested = groups.dropna(subset=["p_value"]) if not groups.empty else groups
    if tested.empty:
        parts.append("No two groups with at least two animals each were compared.")
    else:
        gof_groups = tested[tested["metric"] == "gof_bits"]
        significant = gof_groups[gof_groups["p_value"] < 0.05]
        parts.append(f"{len(significant)} of {len(gof_groups)} between-group comparison(s) of "
                     "goodness-of-fit effects have p < 0.05 (uncorrected).")
    return " ".join(parts)
