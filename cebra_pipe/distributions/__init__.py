"""Sampling distributions at the level of indices, for users who build their own loops.

``sample_prior(n)`` draws reference indices, ``sample_conditional(...)`` positives.
Training itself uses :mod:`cebra_pipe.data.samplers`, which work on datasets and
segments; these classes take plain label arrays, except the multi-session ones of
:mod:`.multisession`, which take a multi-session dataset and draw through
:class:`cebra_pipe.data.samplers.MultiSessionSampler`. They exist for the reference's
``cebra.distributions`` names: a new distribution subclasses
:class:`~.base.PriorDistribution` (``sample_prior``) and/or
:class:`~.base.ConditionalDistribution` (``sample_conditional``) in :mod:`.base`.
"""

from cebra_pipe.distributions import base, continuous, discrete, index, mixed, multisession
from cebra_pipe.distributions.base import (ConditionalDistribution, HasGenerator,
                                           JointDistribution, Prior, PriorDistribution)
from cebra_pipe.distributions.continuous import (DeltaNormalDistribution, TimeContrastive,
                                                 TimedeltaDistribution)
from cebra_pipe.distributions.discrete import Discrete, DiscreteEmpirical, DiscreteUniform
from cebra_pipe.distributions.index import ConditionalIndex, ContinuousIndex, DistanceMatrix
from cebra_pipe.distributions.mixed import Mixed, MixedTimeDeltaDistribution
from cebra_pipe.distributions.multisession import (DiscreteMultisessionSampler,
                                                   MultisessionSampler, UnifiedSampler)

__all__ = ["ConditionalDistribution", "ConditionalIndex", "ContinuousIndex",
           "DeltaNormalDistribution", "Discrete", "DiscreteEmpirical",
           "DiscreteMultisessionSampler", "DiscreteUniform", "DistanceMatrix", "HasGenerator",
           "JointDistribution", "Mixed", "MixedTimeDeltaDistribution", "MultisessionSampler",
           "Prior", "PriorDistribution", "TimeContrastive", "TimedeltaDistribution",
           "UnifiedSampler", "base", "continuous", "discrete", "index", "mixed",
           "multisession"]
