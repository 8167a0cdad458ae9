"""Hypothesis tests on trained models: which labels does a recording encode?

Analysis layer: imports the estimator, decoders and metrics; the core (models, data,
solver) never imports it. Usable on a fitted estimator and arrays:

>>> from cebra_pipe import hypothesis
>>> tests = hypothesis.evaluation_nulls(model, X_train, X_valid, (y_valid,),
...                                     {"position": (y_train, y_valid)}, num_nulls=200)
>>> [(t.metric, t.real, t.null_median, t.p_value) for t in tests]

* :mod:`~cebra_pipe.hypothesis.nulls`: null label orders (circular shifts in time,
  within trials; sample-wise permutations as the weaker alternative);
* :mod:`~cebra_pipe.hypothesis.evaluation`: evaluation nulls of a trained model's
  held-out scores, and raw/PCA decoding baselines;
* :mod:`~cebra_pipe.hypothesis.loao`: leave-one-animal-out decoding of multi-session
  models (train on the other animals, add the held-out one through ``adapt``);
* :mod:`~cebra_pipe.hypothesis.stats`: permutation p-values, Holm/BH corrections, the
  cohort sign-flip test and the between-group permutation test;
* :mod:`~cebra_pipe.hypothesis.tables`: session, cohort and group tables and figures.
"""

from cebra_pipe.hypothesis.evaluation import (METRIC_INFO, NullTest, baseline_scores,
                                              decoder_predictions, decoding_nulls,
                                              evaluation_nulls, gof_nulls, smooth)
from cebra_pipe.hypothesis.loao import TransferTest, leave_one_animal_out
from cebra_pipe.hypothesis.nulls import null_orders, parse_duration, to_samples
from cebra_pipe.hypothesis.stats import (adjust_p_values, benjamini_hochberg, compare_groups,
                                         holm, permutation_p_value, sign_flip_test,
                                         smallest_p_value)

__all__ = ["METRIC_INFO", "NullTest", "TransferTest", "adjust_p_values", "baseline_scores",
           "benjamini_hochberg", "compare_groups", "decoder_predictions", "decoding_nulls",
           "evaluation_nulls", "gof_nulls", "holm", "leave_one_animal_out", "null_orders",
           "parse_duration", "permutation_p_value", "sign_flip_test", "smallest_p_value", "smooth",
           "to_samples"]
