"""The module layout of the reference ``cebra`` (``cebra.integrations``) over cebra_pipe.

Scripts written for the reference import ``cebra.integrations.sklearn.cebra``,
``...metrics``, ``...decoder``, ``...helpers``, ``...utils`` and
``cebra.integrations.matplotlib``; these thin modules give the same names, backed by
cebra_pipe's own code (``import cebra_pipe.integrations.sklearn.cebra``).
"""
