"""The solver registry (``register``, ``init``, ``get_options``)."""

from cebra_pipe.registry import Registry

_registry = Registry("solver")
register = _registry.register
get_options = _registry.get_options
init = _registry.init
