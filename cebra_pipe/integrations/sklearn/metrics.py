"""InfoNCE, goodness of fit and consistency (``cebra.integrations.sklearn.metrics``)."""

from cebra_pipe.sklearn.metrics import (consistency_score, goodness_of_fit_history,
                                        goodness_of_fit_score, infonce_loss,
                                        infonce_to_goodness_of_fit)

__all__ = ["consistency_score", "goodness_of_fit_history", "goodness_of_fit_score",
           "infonce_loss", "infonce_to_goodness_of_fit"]
