"""Training nulls: variants, their label specs and labels, and the controls table."""

import numpy as np
import pandas as pd
import pytest

from cebra_pipe.pipeline import config as cp_config
from cebra_pipe.pipeline.common import Session
from cebra_pipe.pipeline.controls import compare
from cebra_pipe.pipeline.train import check_label_spec, control_labels

CONFIG = {"labels": {"position": {"type": "continuous"}, "direction": {"type": "discrete"}},
          "label_sets": {"position": ["position"]},
          "models": {"behavior": {"label_sets": ["position"]}},
          "controls": {"shuffle": True, "count": 3, "kind": "circular_shift", "seed": 7},
          "hypotheses": {"min_shift": 5, "within_trials": True}}


def test_count_training_nulls_per_label_set():
    variants = cp_config.single_variants(CONFIG)
    assert [v.labels for v in variants] == ["position", "position-shuffled",
                                            "position-shuffled1", "position-shuffled2"]
    assert [v.null_index for v in variants] == [0, 0, 1, 2]
    assert [v.shuffled for v in variants] == [False, True, True, True]
    assert {v.label_set for v in variants} == {"position"}
    spec = cp_config.label_spec(CONFIG, variants[3])
    assert spec["null_kind"] == "circular_shift" and spec["null_index"] == 2
    assert spec["min_shift"] == 5 and spec["within_trials"] is True
    assert "null_kind" not in cp_config.label_spec(CONFIG, variants[0])
    assert cp_config.single_variants({**CONFIG, "controls": {"shuffle": False}})[-1].labels \
        == "position"


def _session():
    n = 60
    trial = np.repeat([0, 1, 2], 20)
    labels = {"position": np.arange(n, dtype=np.float32)[:, None],
              "direction": (np.arange(n) % 2).astype(np.int64)}
    meta = {"animal": "r", "session": "s", "label_types": {"position": "continuous",
                                                           "direction": "discrete"}}
    return Session(np.zeros((n, 3), np.float32), labels, trial, meta)


def _spec(**overrides):
    spec = {"names": ["position", "direction"], "shuffle": True, "shuffle_seed": 1,
            "null_kind": "circular_shift", "null_index": 0, "min_shift": 5,
            "within_trials": True}
    return check_label_spec({**spec, **overrides})


def test_circular_shift_training_labels_rotate_inside_trials_together():
    session, idx = _session(), np.arange(60)
    continuous, discrete = control_labels(session, _spec(), idx, [0, 0])
    for t in range(3):
        block = continuous[20 * t:20 * (t + 1), 0]
        assert set(block) == set(range(20 * t, 20 * (t + 1)))
        shift = int((20 * t - block[0]) % 20)
        assert 5 <= shift <= 15
        np.testing.assert_array_equal(block, 20 * t + (np.arange(20) - shift) % 20)
    # all labels move with one shared order
    np.testing.assert_array_equal(discrete, continuous[:, 0].astype(int) % 2)
    other, _ = control_labels(session, _spec(null_index=1), idx, [0, 0])
    assert not np.array_equal(other, continuous)


def test_permutation_and_real_labels():
    session, idx = _session(), np.arange(60)
    permuted, _ = control_labels(session, _spec(null_kind="permutation", within_trials=False),
                                 idx, [0, 0])
    assert sorted(permuted[:, 0]) == list(range(60))
    real, _ = control_labels(session, check_label_spec({"names": ["position", "direction"]}),
                             idx, [0, 0])
    np.testing.assert_array_equal(real[:, 0], np.arange(60))


def test_controls_table_training_null_p_value():
    rows = []
    for seed in (0, 1):
        rows.append({"labels": "position", "control": "real", "seed": seed, "value": 0.8})
        for k, value in enumerate((0.1, 0.9, 0.2)):
            rows.append({"labels": f"position-shuffled{k or ''}", "control": "shuffled",
                         "seed": seed, "value": value})
    frame = pd.DataFrame(rows).assign(animal="r", session="s", model="m", label_set="position",
                                      target="-", metric="gof_bits")
    row = compare(frame).iloc[0]
    assert row["num_nulls"] == 3
    assert row["p_value"] == pytest.approx((1 + 1) / (1 + 3))  # one null (0.9) beats 0.8
    assert row["shuffled_mean"] == pytest.approx(0.4) and bool(row["real_better"])
