"""On the real rat 'achilles' recording: true position is encoded, a foreign smooth
variable (rat buddy's position, resampled to the same length) is not supported."""

from pathlib import Path

import numpy as np
import pytest

import cebra_pipe as cebra
from cebra_pipe.hypothesis import evaluation_nulls
from cebra_pipe.hypothesis.tables import session_table

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
ACHILLES = DATA / "rat_hippocampus_achilles" / "rat_hippocampus_achilles.npz"
BUDDY = DATA / "rat_hippocampus_buddy" / "rat_hippocampus_buddy.npz"


@pytest.fixture(scope="module")
def recording():
    if not (ACHILLES.is_file() and BUDDY.is_file()):
        pytest.skip(f"real recordings not found under {DATA}")
    achilles, buddy = np.load(ACHILLES), np.load(BUDDY)
    neural = achilles["neural"]
    position = achilles["position"].astype(np.float32)
    other = buddy["position"].astype(np.float64)
    foreign = np.interp(np.linspace(0, len(other) - 1, len(neural)), np.arange(len(other)),
                        other).astype(np.float32)
    return neural, {"position": position, "foreign": foreign}, achilles["trial"]


def _fit(neural, label, cut):
    model = cebra.CEBRA(model_architecture="offset10-model", batch_size=256, max_iterations=500,
                        time_offsets=10, output_dimension=8, conditional="time_delta",
                        learning_rate=0.001, random_state=0, device="cpu")
    return model.fit(neural[:cut], label[:cut, None])


def test_true_position_encoded_foreign_position_not(recording):
    neural, labels, _ = recording
    cut = int(0.8 * len(neural))  # 80/20 split in time
    rows = []
    for name, label in labels.items():
        model = _fit(neural, label, cut)
        # defaults: 200 circular-shift nulls of at least 50 samples (1.25 s)
        for test in evaluation_nulls(model, neural[:cut], neural[cut:], (label[cut:, None],),
                                     {name: (label[:cut], label[cut:])}, units={name: "m"}):
            rows.append({"animal": "achilles", "session": "s1", "model": "behavior",
                         "label_set": name, **test.row()})
    table = session_table(rows, correction="holm", alpha=0.05).set_index(["label_set", "metric"])
    print(table[["real", "null_median", "effect", "p_value", "p_adjusted", "verdict"]]
          .to_string())
    for metric in ("gof_bits", "r2", "median_abs_error"):
        assert table.loc[("position", metric), "verdict"] == "encoded"
        assert table.loc[("position", metric), "p_adjusted"] < 0.05
        assert table.loc[("foreign", metric), "verdict"] == "not supported"
    assert table.loc[("position", "r2"), "real"] > 0.6
    assert table.loc[("position", "median_abs_error"), "real"] < 0.15  # metres
