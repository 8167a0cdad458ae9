"""scikit-learn integration, laid out as in the reference: estimator, metrics,
decoders, helpers and input checks."""

from cebra_pipe.integrations.sklearn import cebra, decoder, helpers, metrics, utils

__all__ = ["cebra", "decoder", "helpers", "metrics", "utils"]
