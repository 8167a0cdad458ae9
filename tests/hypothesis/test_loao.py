"""Leave-one-animal-out decoding through multi-session adaptation."""

from __future__ import annotations

import numpy as np
import pytest

from cebra_pipe import CEBRA
from cebra_pipe.hypothesis import leave_one_animal_out

PARAMS = dict(model_architecture="offset5-model", conditional="time_delta", time_offsets=2,
              batch_size=64, output_dimension=3, max_iterations=100, max_adapt_iterations=100,
              learning_rate=0.01, device="cpu", random_state=0)
CUT = 400


def _track(seed: int, T: int = 600) -> np.ndarray:
    """A position in [0, 1] running back and forth, (T,)."""
    rng = np.random.default_rng(seed)
    phase = np.cumsum(np.abs(rng.normal(0.02, 0.008, T)))
    return np.abs(phase % 2 - 1)


def _animal(seed: int, neurons: int) -> tuple[np.ndarray, np.ndarray]:
    """Neurons ``(T, neurons)`` tuned (randomly per animal) to the position ``(T,)``."""
    rng = np.random.default_rng(100 + seed)
    position = _track(seed)
    latent = np.stack([np.sin(np.pi * position), np.cos(np.pi * position)], 1)
    neural = np.tanh(latent @ rng.normal(size=(2, neurons))) + 0.3 * rng.normal(
        size=(len(position), neurons))
    return neural.astype(np.float32), position.astype(np.float32)


ANIMALS = [_animal(1, 12), _animal(2, 9), _animal(3, 7)]


def _run(name: str, labels: list[np.ndarray]):
    """Train on ``labels`` (one (T,) array per animal) and decode them."""
    return leave_one_animal_out(
        CEBRA(**PARAMS), ["a", "b", "c"], [x[:CUT] for x, _ in ANIMALS],
        [(y[:CUT, None],) for y in labels], [x[CUT:] for x, _ in ANIMALS],
        [{name: (y[:CUT], y[CUT:])} for y in labels], num_nulls=19, min_shift=20,
        units={name: "m"})


@pytest.fixture(scope="module")
def position_tests():
    return _run("position", [p for _, p in ANIMALS])


def test_each_animal_decodes_in_the_others_space(position_tests):
    assert [t.session for t in position_tests] == [0, 0, 1, 1, 2, 2]
    assert [t.animal for t in position_tests] == ["a", "a", "b", "b", "c", "c"]
    for t in position_tests:
        assert t.test.null.shape == (19,)
        assert t.test.p_value == pytest.approx(1 / 20), t
        if t.test.metric == "r2":
            assert t.test.real > 0.5 and t.within > 0.5, t
            assert t.test.null_median < 0.2  # the chance level of R^2 under shifts
        else:
            assert t.test.unit == "m" and t.test.real < t.test.null_median


@pytest.mark.slow
def test_a_foreign_smooth_variable_is_not_decoded_across_animals():
    from scipy.ndimage import gaussian_filter1d

    # smooth random walks, independent of the laps (a periodic variable would keep a
    # chance alignment with the laps over a short held-out part)
    foreign = [gaussian_filter1d(np.random.default_rng(70 + i).normal(size=600), 8) * 5
               for i in range(3)]
    foreign = [f.astype(np.float32) for f in foreign]
    tests = _run("foreign", foreign)
    assert len(tests) == 6
    # with 6 tests at 19 nulls one may reach the smallest p by chance; none decodes
    for t in tests:
        if t.test.metric == "r2":
            assert t.test.p_value > 0.05 and t.test.real < 0.1, t
    assert np.mean([t.test.p_value for t in tests]) > 0.3


@pytest.mark.parametrize("change, match", [
    ({"animals": ["a", "a", "a"]}, "at least two animals"),
    ({"animals": ["a", "b"]}, "animals names 2 sessions"),
    ({"y_train": [(), (), ()]}, "same number"),
])
def test_bad_inputs_are_named(change, match):
    args = {"animals": ["a", "b", "c"], "X_train": [x[:CUT] for x, _ in ANIMALS],
            "y_train": [(p[:CUT, None],) for _, p in ANIMALS],
            "X_valid": [x[CUT:] for x, _ in ANIMALS],
            "targets": [{"position": (p[:CUT], p[CUT:])} for _, p in ANIMALS]}
    args.update(change)
    with pytest.raises(ValueError, match=match):
        leave_one_animal_out(CEBRA(**PARAMS), **args)
