"""The scikit-learn estimator (``cebra.integrations.sklearn.cebra.CEBRA``)."""

from cebra_pipe.sklearn.estimator import CEBRA

__all__ = ["CEBRA"]
