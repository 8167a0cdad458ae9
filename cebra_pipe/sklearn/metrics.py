"""Metrics on CEBRA embeddings and models, under the reference's module path.

* InfoNCE and goodness of fit (:mod:`cebra_pipe.sklearn.goodness_of_fit`):
  :func:`infonce_loss` evaluates a fitted model's own criterion on fresh, seeded
  batches of new data; :func:`goodness_of_fit_score` turns it into bits above chance.
* Consistency (:mod:`cebra_pipe.sklearn.consistency`): :func:`consistency_score`
  measures how well embeddings agree up to a linear map, between runs on the same
  data or between datasets aligned on labels.
"""

from cebra_pipe.sklearn.consistency import consistency_score
from cebra_pipe.sklearn.goodness_of_fit import (goodness_of_fit_history, goodness_of_fit_score,
                                                infonce_loss, infonce_to_goodness_of_fit)

__all__ = ["consistency_score", "goodness_of_fit_history", "goodness_of_fit_score",
           "infonce_loss", "infonce_to_goodness_of_fit"]
