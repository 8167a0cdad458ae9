"""``python -m cebra_pipe attribution``: which neurons carry each model's embedding.

One job per session covers all of its single-session models (every non-shuffled
label set, and CEBRA-Time) and the multi-session models of every session group it
belongs to (``--multi-variants``: the encoder of this session, found by name in the
model's ``embeddings.npz``), all seeds. For each trained model it computes an
attribution map on the train split with a :mod:`cebra_pipe.attribution` method
(default ``jacobian-based``: the mean absolute pseudo-inverse of the encoder's
Jacobian), ``(neurons, embedding dims)``, over ``--num-samples`` seeded time steps.

Outputs
-------
maps (.npz)
    ``<model>/<label set>/seed<k>`` (single-session) and
    ``multi/<group>/<model>/<label set>/seed<k>`` (multi-session):
    ``(neurons, dims)`` float32 maps.
ranks (.tsv)
    Per variant (``variant`` = the map key without its seed; ``group`` is empty for
    single-session models): every neuron with its ``score`` (share of the total
    attribution, mean over seeds; chance = 1 / neurons), its spread over seeds, its
    ``rank`` (1 = strongest) and the fraction of seeds that put it in their top k.
summary (.json)
    Top-k neurons per seed, their overlap across seeds (mean pairwise Jaccard index
    with its chance level), the method and whether units are matched across the
    animal's sessions (``attribution.matched_units``).

:func:`report_attribution` shows heat maps and overlaps (across seeds, and across
sessions of an animal whose units are matched) in the per-animal report.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.pipeline.arguments import parse_seeds
from cebra_pipe.pipeline.common import (PipelineError, all_or_nothing, json_arg, load_model,
                                        load_session,
                                        load_split, run, save_npz, write_json,
                                        write_provenance, write_tsv)
from cebra_pipe.pipeline.layout import Layout, seed_dir

STEP = "attribution"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--session", required=True, help="session file (ingest output)")
    parser.add_argument("--split", required=True, help="split file")
    parser.add_argument("--dir", required=True,
                        help="the session's training folder: <model>/<label set>/seed<k>/")
    parser.add_argument("--variants", type=json_arg, required=True,
                        help='JSON list of {"model": ..., "label_set": ...} (may be empty)')
    parser.add_argument("--multi-dir",
                        help="multi-session training folder: <group>/<model>/<label set>/seed<k>/")
    parser.add_argument("--multi-variants", type=json_arg, default=[],
                        help='JSON list of {"group": ..., "model": ..., "label_set": ...}: '
                             "multi-session models whose groups contain this session")
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--method", default="jacobian-based")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--num-samples", type=int, default=2000,
                        help="time steps of the train split explained (all if fewer)")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--matched-units", choices=("true", "false"), default="false")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--maps", required=True)
    parser.add_argument("--ranks", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--provenance", required=True)
    return parser


# ------------------------------------------------------------------------- science

def neuron_map(model: Any, neural: np.ndarray, method: str, num_samples: int,
               seed: int, session_id: int | None = None) -> np.ndarray:
    """``(neurons, dims)`` mean absolute attribution of ``model`` on ``neural (time, neurons)``.

    ``session_id`` picks the encoder of a multi-session model. Inverting methods
    contribute their ``-inv-svd`` map (how each neuron moves with each embedding
    direction), the others their own map.
    """
    from cebra_pipe import attribution

    valid = len(neural) - len(model.offset_) + 1
    explainer = attribution.init(method, model=model, input_data=neural,
                                 num_samples=min(int(num_samples), valid), seed=seed,
                                 session_id=session_id)
    options = {"inverse_methods": ("svd",)} if explainer.invert else {}
    result = explainer.compute_attribution_map(aggregate="abs-mean", **options)
    key = f"{explainer.key}-inv-svd" if f"{explainer.key}-inv-svd" in result else explainer.key
    return result[key].T.astype(np.float32)


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` largest ``scores (neurons,)``, strongest first (ties: lower index)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(i) for i in order[:k]]


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    """``|a & b| / |a | b|``."""
    a, b = set(a), set(b)
    return len(a & b) / len(a | b) if a | b else 1.0


def chance_jaccard(k: int, neurons: int) -> float:
    """Expected Jaccard index of two random ``k``-subsets of ``neurons`` (exact)."""
    from scipy.stats import hypergeom

    overlap = hypergeom(neurons, k, k)
    values = np.arange(0, k + 1)
    return float(np.sum(overlap.pmf(values) * values / (2 * k - values)))


def mean_pairwise_jaccard(sets: Sequence[Sequence[int]]) -> float | None:
    pairs = list(itertools.combinations(sets, 2))
    return float(np.mean([jaccard(a, b) for a, b in pairs])) if pairs else None


def rank_table(maps: dict[int, np.ndarray], k: int) -> tuple[Any, dict[str, Any]]:
    """Ranked neurons and top-k overlap of one variant's ``seed -> (neurons, dims)`` maps."""
    import pandas as pd

    shares = np.stack([m.sum(1) / max(float(m.sum()), 1e-30) for m in maps.values()])
    score, spread = shares.mean(0), shares.std(0)
    tops = {seed: top_k(share, k) for seed, share in zip(maps, shares)}
    in_top = np.mean([[n in top for n in range(shares.shape[1])] for top in tops.values()], 0)
    order = top_k(score, len(score))
    frame = pd.DataFrame({"neuron": order, "rank": np.arange(1, len(order) + 1),
                          "score": score[order], "score_sd_seeds": spread[order],
                          "top_k_fraction_seeds": in_top[order]})
    summary = {"top_k": {str(seed): top for seed, top in tops.items()},
               "top_k_consensus": order[:k],
               "seed_overlap_jaccard": mean_pairwise_jaccard(list(tops.values())),
               "chance_jaccard": chance_jaccard(k, shares.shape[1]),
               "num_neurons": int(shares.shape[1])}
    return frame, summary


# --------------------------------------------------------------------------- step

def _check_variants(value: Any, option: str, keys: set[str]) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(
            isinstance(v, dict) and keys <= set(v) and all(isinstance(v[k], str) for k in keys)
            for v in value):
        raise PipelineError(f"{option} must be a JSON list of objects with string fields "
                            f"{sorted(keys)}, got {json.dumps(value)[:200]}.")
    return value


def _check_args(args: argparse.Namespace) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    if args.top_k < 1 or args.num_samples < 1:
        raise PipelineError(f"--top-k and --num-samples must be >= 1, got {args.top_k} and "
                            f"{args.num_samples}.")
    from cebra_pipe import attribution

    if not attribution.is_registered(args.method):
        raise PipelineError(f"--method {args.method!r} is not an attribution method; choose "
                            f"one of {attribution.get_options()}.")
    variants = _check_variants(args.variants, "--variants", {"model", "label_set"})
    multi = _check_variants(args.multi_variants, "--multi-variants",
                            {"group", "model", "label_set"})
    if multi and not args.multi_dir:
        raise PipelineError("--multi-variants needs --multi-dir (the multi-session training "
                            "folder).")
    if not variants and not multi:
        raise PipelineError("--variants and --multi-variants are both empty: no model to "
                            "explain.")
    return variants, multi


def encoder_index(embeddings: Path, session: str) -> int:
    """Which encoder of a multi-session model belongs to ``session`` ("animal/session").

    Read from the ``sessions`` names ``train-multi`` stores next to the model, so
    that the order of the group's sessions never has to be repeated elsewhere.
    """
    try:
        with np.load(embeddings, allow_pickle=False) as data:
            names = [str(n) for n in data["sessions"]]
    except FileNotFoundError:
        raise PipelineError(f"'{embeddings}' is missing; rerun train-multi.") from None
    except (KeyError, OSError, ValueError) as err:
        raise PipelineError(f"'{embeddings}' has no readable 'sessions' names: {err}") from None
    if session not in names:
        raise PipelineError(f"session {session} is not among the sessions of the multi-session "
                            f"model next to '{embeddings}': {names}.")
    return names.index(session)


def _jobs(args: argparse.Namespace, variants: list[dict[str, str]],
          multi: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every model to explain: name, folder of its seeds, group and encoder index."""
    jobs = [{"name": f"{v['model']}/{v['label_set']}", "group": "", "session_id": None,
             "folder": Path(args.dir) / v["model"] / v["label_set"], **v} for v in variants]
    for v in multi:
        folder = Path(args.multi_dir) / v["group"] / v["model"] / v["label_set"]
        jobs.append({"name": f"multi/{v['group']}/{v['model']}/{v['label_set']}",
                     "folder": folder, "session_id": None, **v})
    return jobs


def _variant_maps(job: dict[str, Any], seeds: list[int], neural: np.ndarray,
                  args: argparse.Namespace, session: str, inputs: list[str]
                  ) -> dict[int, np.ndarray]:
    """``seed -> (neurons, dims)`` maps of one variant.

    Records the files read in ``inputs`` and, for a multi-session model, this
    session's encoder index in ``job["session_id"]``.
    """
    maps = {}
    for seed in seeds:
        path = seed_dir(job["folder"], seed) / "model.pt"
        if job["group"]:
            embeddings = path.with_name("embeddings.npz")
            job["session_id"] = encoder_index(embeddings, session)
            inputs.append(str(embeddings))
        inputs.append(str(path))
        model = load_model(path, args.device)
        try:
            maps[seed] = neuron_map(model, neural, args.method, args.num_samples,
                                    args.sample_seed, job["session_id"])
        except ValueError as err:
            # e.g. the session's neuron count differs from what the encoder takes.
            raise PipelineError(f"model file '{path}' on session {session}: {err}") from None
    return maps


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    variants, multi = _check_args(args)
    seeds = parse_seeds(args.seeds)
    import pandas as pd
    import torch

    torch.set_num_threads(max(1, args.threads))
    session = load_session(args.session)
    train = load_split(args.split, len(session.neural))["train"]
    neural = session.neural[train]
    k = min(args.top_k, neural.shape[1])
    arrays, tables, summary, inputs = {}, [], {}, [args.session, args.split]
    for job in _jobs(args, variants, multi):
        maps = _variant_maps(job, seeds, neural, args, session.name, inputs)
        arrays.update({f"{job['name']}/seed{seed}": m for seed, m in maps.items()})
        frame, summary[job["name"]] = rank_table(maps, k)
        summary[job["name"]].update(group=job["group"] or None, session_id=job["session_id"],
                                    model=job["model"], label_set=job["label_set"])
        tables.append(frame.assign(variant=job["name"], group=job["group"], model=job["model"],
                                   label_set=job["label_set"]))
    meta = session.meta
    ranks = pd.concat(tables, ignore_index=True).assign(
        animal=meta.get("animal"), session=meta.get("session"))
    ranks = ranks[["animal", "session", "variant", "group", "model", "label_set", "neuron",
                   "rank", "score", "score_sd_seeds", "top_k_fraction_seeds"]]
    record = {"animal": meta.get("animal"), "session": meta.get("session"),
              "method": args.method, "top_k": k, "num_samples": args.num_samples,
              "matched_units": args.matched_units == "true", "seeds": seeds,
              "variants": summary}
    outputs = [args.maps, args.ranks, args.summary, args.provenance]
    with all_or_nothing(outputs):
        save_npz(args.maps, arrays)
        write_tsv(args.ranks, ranks)
        write_json(args.summary, record)
        write_provenance(args.provenance, STEP, params={k_: v for k_, v in vars(args).items()
                                                        if k_ not in ("maps", "ranks",
                                                                      "summary", "provenance")},
                         inputs=inputs, seeds=seeds)


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)


# ------------------------------------------------------------------------- report

def session_overlap(summaries: dict[str, dict[str, Any]], variant: str) -> Any:
    """Jaccard index of the consensus top-k neurons between each pair of sessions.

    Only for sessions whose units are matched (``matched_units``) and that have the
    same neuron count; ``None`` otherwise.
    """
    import pandas as pd

    usable = {s: d for s, d in summaries.items() if d["matched_units"] and variant in d["variants"]}
    counts = {d["variants"][variant]["num_neurons"] for d in usable.values()}
    if len(usable) < 2 or len(counts) != 1:
        return None
    rows = [{"session_a": a, "session_b": b,
             "jaccard": jaccard(usable[a]["variants"][variant]["top_k_consensus"],
                                usable[b]["variants"][variant]["top_k_consensus"]),
             "chance": chance_jaccard(usable[a]["top_k"], next(iter(counts)))}
            for a, b in itertools.combinations(sorted(usable), 2)]
    return pd.DataFrame(rows)


def plot_maps(maps: dict[str, np.ndarray], ranks: Any, title: str):
    """Heat maps ``(top neurons, dims)`` of each variant's first seed, neurons by rank."""
    import matplotlib.pyplot as plt

    names = sorted({key.rsplit("/", 1)[0] for key in maps})
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 4.2), squeeze=False,
                             layout="constrained")
    for ax, name in zip(axes[0], names):
        first = sorted(k for k in maps if k.startswith(f"{name}/"))[0]
        order = ranks[ranks.variant == name].sort_values("rank").neuron.to_numpy()[:30]
        values = maps[first][order]
        image = ax.imshow(values / max(values.max(), 1e-30), aspect="auto", cmap="viridis",
                          vmin=0, vmax=1)
        ax.set_yticks(range(len(order)), [str(n) for n in order], fontsize=6)
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel("neuron (by rank)")
        ax.set_title(f"{name}\n({first.rsplit('/', 1)[1]})", fontsize=8)
    fig.colorbar(image, ax=axes[0].tolist(), label="|attribution| / max (a.u.)")
    fig.suptitle(title, fontsize=9)
    return fig


def report_attribution(results: str | Path, animal: str, sessions: Sequence[str]) -> None:
    """The per-animal report section: heat maps, seed overlap, session overlap."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from IPython.display import display

    from cebra_pipe.pipeline import reportlib as rl

    layout = Layout(results)
    summaries = {s: json.loads(Path(layout.attribution_file(animal, s, "json")).read_text())
                 for s in sessions if Path(layout.attribution_file(animal, s, "json")).is_file()}
    if not summaries:
        rl.md("*attribution maps are off (`attribution: enabled: false`)*")
        return
    first = next(iter(summaries.values()))
    rl.md(f"Method `{first['method']}` on the train split: mean |attribution| per neuron and "
          f"embedding dimension. Score = share of the total attribution (chance 1 / neurons). "
          f"Overlap = Jaccard index of the top-{first['top_k']} neurons (1 = same neurons). "
          f"`multi/<group>/...`: the multi-session model's encoder of that session.")
    for session, record in summaries.items():
        rl.md(f"### Session `{session}`")
        with np.load(layout.attribution_file(animal, session), allow_pickle=False) as data:
            maps = {key: data[key] for key in data.files}
        ranks = pd.read_csv(layout.attribution_file(animal, session, "tsv"), sep="\t")
        plot_maps(maps, ranks, f"{animal} / {session}: top neurons")
        plt.show()
        display(pd.DataFrame([{"model / label set": name,
                               f"top-{record['top_k']} neurons (consensus)":
                                   ", ".join(map(str, v["top_k_consensus"])),
                               "overlap across seeds (Jaccard)": v["seed_overlap_jaccard"],
                               "chance": round(v["chance_jaccard"], 3)}
                              for name, v in record["variants"].items()]))
    # Multi-session variants of a group the first session is not in count too.
    names = dict.fromkeys(name for record in summaries.values() for name in record["variants"])
    for name in names:
        overlap = session_overlap(summaries, name)
        if overlap is not None:
            rl.md(f"**{name}: overlap of top neurons across sessions (matched units)**")
            display(overlap)
