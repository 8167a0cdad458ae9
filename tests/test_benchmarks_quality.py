"""The quality benchmark (benchmarks/quality.py) keeps working: its scoring functions are
right, and its quick mode for cebra_pipe decodes a small synthetic track far better
than chance."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


def _load_quality():
    """benchmarks/ is not a package: load the script as a module."""
    spec = importlib.util.spec_from_file_location("bench_quality", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


quality = _load_quality()


def test_consistency_is_one_for_linear_maps_and_low_for_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(500, 3))
    mixed = base @ rng.normal(size=(3, 3)) + 0.5
    assert quality.pairwise_consistency([base, mixed, 2 * base]) == pytest.approx(1.0)
    assert quality.pairwise_consistency([base, rng.normal(size=(500, 3))]) < 0.1
    assert math.isnan(quality.pairwise_consistency([base]))


def test_decoder_beats_shuffled_labels_on_an_informative_embedding():
    # A ring embedding of position (like CEBRA's cosine embeddings): decodable.
    rng = np.random.default_rng(1)
    position = rng.uniform(0, 1.6, 2000)
    angle = position / 1.6 * np.pi
    embedding = np.stack([np.cos(angle), np.sin(angle), 0.05 * rng.normal(size=2000)], 1)
    error = quality.decode_error(embedding[:1600], position[:1600], embedding[1600:],
                                 position[1600:])
    chance = quality.shuffled_error(embedding[:1600], position[:1600], embedding[1600:],
                                    position[1600:])
    assert error < 0.05
    assert chance > 0.3


@pytest.mark.slow
def test_quick_mode_for_cebra_pipe_decodes_far_below_chance(tmp_path):
    rows = quality.run(None, quick=True, steps=300, seeds=[0, 1], synthetic_duration=60.0,
                       keep=tmp_path, log=lambda *a, **k: None)
    assert len(rows) == 1
    row = rows[0]
    assert (row["benchmark"], row["dataset"], row["library"]) == ("quality", "synthetic",
                                                                    "cebra_pipe")
    assert row["seeds"] == [0, 1] and row["n_train"] == 1920 and row["n_test"] == 480
    # A chance-level decoder is off by ~0.4 m on a 1.6 m track; trained CEBRA by a few cm.
    assert row["median_abs_error"] < 0.25 * row["shuffled_median_abs_error"]
    assert 0.5 < row["consistency"] <= 1.0
    assert all(s > 0 for s in row["fit_seconds_per_seed"])
    assert "ratio_to_reference" not in row
    assert "cebra_pipe" in quality.format_table(rows)
