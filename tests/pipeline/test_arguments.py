"""The checks of the arguments rules pass to several steps (``pipeline/arguments.py``)."""

import pytest

from cebra_pipe.pipeline.arguments import check_label_spec, check_model_params, parse_seeds
from cebra_pipe.pipeline.common import PipelineError


def test_a_training_null_needs_the_config_s_null_settings():
    """How labels are nulled is defaulted once, in the config schema: a spec that asks
    for a null without saying how is refused, naming the missing fields."""
    with pytest.raises(PipelineError, match=r"needs field\(s\) \['min_shift', 'within_trials'\]"):
        check_label_spec({"names": ["position"], "shuffle": True, "null_kind": "permutation"})
    spec = check_label_spec({"names": ["position"], "shuffle": True, "null_kind": "permutation",
                             "min_shift": 50, "within_trials": True})
    assert spec["null_index"] == 0 and spec["bin_size"] is None
    assert check_label_spec({"names": ["position"]}) == {"names": ["position"],
                                                          "shuffle": False, "shuffle_seed": 0}


def test_seeds_and_model_fields_are_checked_once_for_every_step():
    assert parse_seeds(" 2, 0,1 ") == [2, 0, 1]
    with pytest.raises(PipelineError, match="distinct"):
        parse_seeds("1,1")
    assert check_model_params({"batch_size": 64, "checkpoint_every": 10}) == {"batch_size": 64}
    with pytest.raises(PipelineError, match="'model_architecture': unknown model 'offset0'"):
        check_model_params({"model_architecture": "offset0"})
