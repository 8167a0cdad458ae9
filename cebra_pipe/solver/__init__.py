"""Solvers: training loops (``init("single-session", model=..., criterion=..., optimizer=...)``)."""

from cebra_pipe.solver.base import (Solver, TrainingDivergedError, newest_checkpoint,
                                    transform_recording)
from cebra_pipe.solver.device import resolve_device
from cebra_pipe.solver.ensemble import EnsembleSolver
from cebra_pipe.solver.multi_session import MultiSessionSolver
from cebra_pipe.solver.registry import get_options, init, register
from cebra_pipe.solver.single_session import SingleSessionHybridSolver, SingleSessionSolver

__all__ = ["EnsembleSolver", "MultiSessionSolver", "SingleSessionHybridSolver",
           "SingleSessionSolver", "Solver", "TrainingDivergedError", "get_options", "init",
           "newest_checkpoint", "register", "resolve_device", "transform_recording"]
