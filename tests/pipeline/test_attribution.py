"""The ``attribution`` workflow step: maps, ranked neurons, overlaps, bad input."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cebra_pipe as cebra
from cebra_pipe.pipeline import attribution as step
from cebra_pipe.pipeline.common import EXIT_BAD_INPUT, save_npz

SEEDS = (0, 1)
VARIANTS = [{"model": "behavior", "label_set": "position"}, {"model": "time", "label_set": "none"}]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A session file, its split and two trained seeds of two models."""
    root = tmp_path_factory.mktemp("attribution")
    rec = cebra.datasets.init("synthetic-connectivity", num_timesteps=800, num_neurons=16,
                              neurons_per_latent=4)
    meta = {"animal": "a1", "session": "s1", "label_types": {"position": "continuous"}}
    save_npz(root / "session.npz", {"neural": rec.neural, "label_position": rec.continuous,
                                    "meta": np.array(json.dumps(meta))})
    save_npz(root / "split.npz", {"train": np.arange(600), "valid": np.arange(600, 800)})
    for variant, seed in itertools.product(VARIANTS, SEEDS):
        labels = (rec.continuous[:600],) if variant["label_set"] != "none" else ()
        model = cebra.CEBRA(model_architecture="offset5-model", batch_size=32,
                            max_iterations=15, output_dimension=3, num_hidden_units=8,
                            conditional="time" if not labels else None, device="cpu",
                            random_state=seed).fit(rec.neural[:600], *labels)
        folder = root / "single" / variant["model"] / variant["label_set"] / f"seed{seed}"
        folder.mkdir(parents=True)
        model.save(folder / "model.pt")
    return root


def args(root: Path, out: str, **extra) -> list[str]:
    options = {"--session": root / "session.npz", "--split": root / "split.npz",
               "--dir": root / "single", "--variants": json.dumps(VARIANTS),
               "--seeds": "0,1", "--top-k": "4", "--num-samples": "300",
               "--maps": root / out / "maps.npz", "--ranks": root / out / "ranks.tsv",
               "--summary": root / out / "summary.json",
               "--provenance": root / out / "provenance.json", **extra}
    return [str(x) for pair in options.items() for x in pair]


def test_step_writes_maps_ranks_and_overlaps(workdir):
    assert step.cli(args(workdir, "run1")) == 0
    with np.load(workdir / "run1" / "maps.npz") as maps:
        assert sorted(maps.files) == sorted(f"{v['model']}/{v['label_set']}/seed{s}"
                                            for v in VARIANTS for s in SEEDS)
        assert all(maps[k].shape == (16, 3) and (maps[k] >= 0).all() for k in maps.files)
    ranks = pd.read_csv(workdir / "run1" / "ranks.tsv", sep="\t")
    for _, group in ranks.groupby(["model", "label_set"]):
        assert sorted(group["rank"]) == list(range(1, 17))
        assert sorted(group["neuron"]) == list(range(16))
        assert group["score"].sum() == pytest.approx(1.0)
        assert group.sort_values("rank")["score"].is_monotonic_decreasing
    summary = json.loads((workdir / "run1" / "summary.json").read_text())
    assert summary["top_k"] == 4 and summary["matched_units"] is False
    for record in summary["variants"].values():
        assert 0 <= record["seed_overlap_jaccard"] <= 1
        assert record["chance_jaccard"] == pytest.approx(step.chance_jaccard(4, 16))
        assert len(record["top_k"]["0"]) == 4
    # Seeded: a second run gives the same bytes.
    assert step.cli(args(workdir, "run2")) == 0
    for name in ("maps.npz", "ranks.tsv", "summary.json"):
        assert (workdir / "run1" / name).read_bytes() == (workdir / "run2" / name).read_bytes()


def test_missing_model_and_bad_method_leave_nothing(workdir, capsys):
    bad = json.dumps(VARIANTS + [{"model": "nope", "label_set": "position"}])
    assert step.cli(args(workdir, "bad1", **{"--variants": bad})) == EXIT_BAD_INPUT
    assert "nope/position/seed0/model.pt" in capsys.readouterr().err
    assert step.cli(args(workdir, "bad2", **{"--method": "saliency"})) == EXIT_BAD_INPUT
    assert "jacobian-based" in capsys.readouterr().err
    assert not (workdir / "bad1").exists() and not (workdir / "bad2").exists()


def test_chance_jaccard_is_exact():
    subsets = list(itertools.combinations(range(6), 2))
    brute = np.mean([step.jaccard(a, b) for a in subsets for b in subsets])
    assert step.chance_jaccard(2, 6) == pytest.approx(brute)
    assert step.chance_jaccard(5, 5) == 1.0


def test_session_overlap_needs_matched_units():
    def record(matched, top, neurons=10):
        return {"matched_units": matched, "top_k": 3,
                "variants": {"m/l": {"top_k_consensus": top, "num_neurons": neurons}}}

    summaries = {"s1": record(True, [1, 2, 3]), "s2": record(True, [2, 3, 4])}
    frame = step.session_overlap(summaries, "m/l")
    assert frame.jaccard.tolist() == [0.5]
    assert frame.chance.iloc[0] == pytest.approx(step.chance_jaccard(3, 10))
    assert step.session_overlap({**summaries, "s2": record(False, [2, 3, 4])}, "m/l") is None
    assert step.session_overlap({**summaries, "s2": record(True, [2, 3, 4], 12)}, "m/l") is None
