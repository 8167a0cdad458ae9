"""Encoders (``init``, ``register``, ``get_options``, ``parametrize``) and criteria."""

from cebra_pipe.models import criterions
from cebra_pipe.models.criterions import (FixedCosineInfoNCE, FixedEuclideanInfoNCE, InfoMSE,
                                          InfoNCE, LearnableCosineInfoNCE,
                                          LearnableEuclideanInfoNCE)
from cebra_pipe.models.model import (ConvolutionalModelMixin, HasFeatureEncoder, Model,
                                     get_options, init, is_registered, parametrize, register)

__all__ = ["ConvolutionalModelMixin", "FixedCosineInfoNCE", "FixedEuclideanInfoNCE",
           "HasFeatureEncoder", "InfoMSE",
           "InfoNCE", "LearnableCosineInfoNCE", "LearnableEuclideanInfoNCE", "Model",
           "criterions", "get_options", "init", "is_registered", "parametrize", "register"]
