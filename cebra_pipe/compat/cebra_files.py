"""Model files of the reference ``cebra`` 0.6.1, read without running pickled code.

``cebra.CEBRA.save`` writes a ``torch.save`` zip archive whose pickle holds either a
dict of plain values (``backend="sklearn"``, the default: ``args``, ``state``,
``state_dict``, ``metadata``) or the whole estimator object (``backend="torch"``).
The standard unpickler would run whatever callable such a file names. Here the pickle
goes through :class:`_AllowListUnpickler` instead: it resolves only plain containers,
torch's tensor-rebuild functions and numpy dtypes/arrays, and it replaces the classes
of ``cebra``, ``torch.nn`` modules and ``torch.optim`` with inert placeholders that
only record the state they are given. Any other global refuses the file
(:class:`DisallowedGlobalError`) before it is called.

The tensors and the plain argument dict are then translated into the payload that
:meth:`cebra_pipe.CEBRA.load` restores, so a CEBRA file becomes an ordinary
cebra_pipe estimator. :func:`save_for_cebra` writes the other direction.
"""

from __future__ import annotations

import codecs
import collections
import copyreg
import io
import json
import os
import pickle
import pickletools
import types
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch._utils
from torch.torch_version import TorchVersion

import cebra_pipe
from cebra_pipe import models
from cebra_pipe.io import atomic_write, jsonable
from cebra_pipe.solver.base import LOG_KEYS

# Architectures whose parameter names, shapes and receptive field are identical in
# cebra 0.6.1 and cebra_pipe (checked by benchmarks/compat_cebra.py, which loads
# files both ways). Others have a different layer layout, so their weights cannot
# be carried over one to one.
SAME_LAYOUT_ARCHITECTURES = ("offset5-model", "offset10-model", "offset10-model-mse",
                             "offset10-model-mse-tanh", "offset15-model", "offset20-model",
                             "offset36-model", "offset36-model-dropout",
                             "offset36-model-more-dropout", "offset40-model",
                             "offset50-model")

# Plain callables a CEBRA file needs. torch's own weights_only unpickler allows the
# same tensor-rebuild functions; none of them can call anything the file names.
_REAL_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    **{(builtins, t.__name__): t for builtins in ("builtins", "__builtin__")
       for t in (dict, list, set, frozenset, tuple, slice)},
    # Protocol 2 (torch.save's default) writes bytes, e.g. numpy array data, as
    # _codecs.encode(text, "latin1"); codecs transform data and run no code.
    ("_codecs", "encode"): codecs.encode,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("torch.torch_version", "TorchVersion"): TorchVersion,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
}
_NUMPY_MULTIARRAY = ("numpy.core.multiarray", "numpy._core.multiarray")
# Classes that become placeholders: their constructors and __setstate__ never run.
_PLACEHOLDER_PREFIXES = ("cebra.", "torch.nn.modules.", "torch.optim.")
_CEBRA_ESTIMATOR = "cebra.integrations.sklearn.cebra.CEBRA"
# Constructor arguments of cebra 0.6.1's estimator that cebra_pipe shares.
_CEBRA_ARGS = frozenset((
    "model_architecture", "device", "criterion", "distance", "conditional", "temperature",
    "temperature_mode", "min_temperature", "time_offsets", "delta", "max_iterations",
    "max_adapt_iterations", "batch_size", "learning_rate", "optimizer", "output_dimension",
    "verbose", "num_hidden_units", "pad_before_transform", "hybrid", "optimizer_kwargs"))
_OFFSET = ("cebra.data.datatypes", "Offset")


class DisallowedGlobalError(ValueError):
    """A model file names a Python global outside the allow-list of CEBRA files."""


class _Placeholder:
    """Stands in for a pickled object of a class that must not be constructed.

    Records the constructor arguments and the state ``pickle`` would have set.
    """

    global_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.pickled_args = args
        obj.pickled_state = {}
        return obj

    def __init__(self, *args, **kwargs):
        pass  # REDUCE calls the class: nothing beyond __new__'s recording happens

    def __setstate__(self, state) -> None:
        # (dict state, slot state) for classes with __slots__, e.g. cebra's Offset.
        if isinstance(state, tuple) and len(state) == 2:
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            state = merged
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected state of {self.global_name}")
        self.pickled_state = state


def _numpy_multiarray(name: str):
    """``_reconstruct`` / ``scalar`` of numpy's multiarray module (numpy 1 or 2 path)."""
    for module in reversed(_NUMPY_MULTIARRAY):  # numpy 2 first: numpy.core warns there
        try:
            return getattr(__import__(module, fromlist=[name]), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no multiarray.{name}")


class _AllowListUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; CEBRA and torch module classes become
    :class:`_Placeholder` subclasses; anything else raises :class:`DisallowedGlobalError`."""

    _placeholders: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        real = _REAL_GLOBALS.get((module, name))
        if real is not None:
            return real
        if module in _NUMPY_MULTIARRAY and name in ("_reconstruct", "scalar"):
            return _numpy_multiarray(name)
        if module == "numpy.dtypes" and name.endswith("DType") and name.isidentifier():
            cls = getattr(np.dtypes, name, None)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                return cls
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        full = f"{module}.{name}"
        if f"{module}.".startswith(_PLACEHOLDER_PREFIXES) and name.isidentifier():
            if full not in self._placeholders:
                self._placeholders[full] = type(f"Placeholder[{full}]", (_Placeholder,),
                                                {"global_name": full})
            return self._placeholders[full]
        raise DisallowedGlobalError(full)


# torch.load takes the unpickler through a module-like object (Unpickler and load).
_ALLOW_LIST_PICKLE = types.SimpleNamespace(
    __name__="cebra_pipe.compat.allow_list_pickle", Unpickler=_AllowListUnpickler,
    load=lambda file, **kw: _AllowListUnpickler(file, **kw).load())


# -- detection ----------------------------------------------------------------------------
def _pickle_record(path: Path) -> bytes | None:
    """The pickle of a ``torch.save`` zip archive, or None for other files."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("data.pkl")]
        return archive.read(names[0]) if len(names) == 1 else None


def _referenced_modules(data: bytes) -> set[str]:
    """Modules named by the pickle's globals, read without executing it."""
    modules: set[str] = set()
    strings: list[str] = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            modules.add(str(arg).split(" ")[0])
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            modules.add(strings[-2])
        if isinstance(arg, str):
            strings.append(arg)
    return modules


def is_cebra_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a ``torch.save`` archive that refers to ``cebra`` classes.

    Reads the pickle's opcodes only; nothing in the file is executed.
    """
    try:
        data = _pickle_record(Path(path))
        if data is None:
            return False
        return any(m == "cebra" or m.startswith("cebra.") for m in _referenced_modules(data))
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return False


# -- reading ------------------------------------------------------------------------------
def _load_restricted(path: Path) -> Any:
    if _pickle_record(path) is None:
        raise ValueError(f"{path} is not a torch.save zip archive, so not a cebra 0.6.1 "
                         "model file.")
    try:
        return torch.load(path, map_location="cpu", pickle_module=_ALLOW_LIST_PICKLE,
                          weights_only=False)  # safe: the allow-list unpickler is used
    except DisallowedGlobalError as error:
        raise DisallowedGlobalError(
            f"Refusing to load {path}: it names the Python global '{error}', which is not "
            "on the allow-list of cebra model files (it could run code). Nothing in the "
            "file was executed.") from None
    except Exception as error:  # noqa: BLE001 - corrupt archive or pickle
        raise ValueError(f"Refusing to load {path}: not a readable cebra model file "
                         f"({type(error).__name__}: {str(error)[:200]}).") from None


def _state_of(obj: Any, what: str, path: Path) -> dict:
    if not isinstance(obj, _Placeholder):
        raise ValueError(f"{path}: {what} is a {type(obj).__name__}, expected a pickled "
                         "object.")
    return obj.pickled_state


def _module_tensors(module: Any, path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """``state_dict()`` of a pickled ``torch.nn.Module`` placeholder."""
    state = _state_of(module, f"module '{prefix or 'model'}'", path)
    tensors: dict[str, torch.Tensor] = collections.OrderedDict()
    for name, value in state.get("_parameters", {}).items():
        if value is not None:
            tensors[prefix + name] = value.detach()
    transient = state.get("_non_persistent_buffers_set", set())
    for name, value in state.get("_buffers", {}).items():
        if value is not None and name not in transient:
            tensors[prefix + name] = value
    for name, child in state.get("_modules", {}).items():
        if child is not None:
            tensors.update(_module_tensors(child, path, f"{prefix}{name}."))
    return tensors


def _optimizer_state(optimizer: Any, path: Path) -> dict:
    """``Optimizer.state_dict()`` of a pickled optimizer: parameters become indices."""
    state = _state_of(optimizer, "the optimizer", path)
    index: dict[int, int] = {}
    groups = []
    for group in state["param_groups"]:
        ids = [index.setdefault(id(p), len(index)) for p in group["params"]]
        groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
    return {"state": {index[id(p)]: dict(s) for p, s in state["state"].items()},
            "param_groups": groups}


def _from_torch_backend(estimator: _Placeholder, param_names: set[str],
                        path: Path) -> tuple[dict, dict, dict]:
    """``(args, state, solver state)`` of a whole pickled ``cebra.CEBRA``."""
    attrs = estimator.pickled_state
    if "solver_" not in attrs:
        raise ValueError(f"{path}: the pickled cebra.CEBRA is not fitted.")
    solver = _state_of(attrs["solver_"], "solver_", path)
    args = {k: attrs[k] for k in (param_names | {"masking_kwargs"}) if k in attrs}
    state = {k: attrs.get(k) for k in ("n_features_in_", "num_sessions_", "offset_",
                                       "label_types_", "solver_name_")}
    solver_state = {"model": _module_tensors(solver["model"], path),
                    "criterion": _module_tensors(solver["criterion"], path),
                    "optimizer": _optimizer_state(solver["optimizer"], path),
                    "loss": torch.tensor(solver.get("history", [])),
                    "log": solver.get("log", {})}
    return args, state, solver_state


_HYBRID_PREFIX = "module."


def _unwrap_hybrid(model_state: dict) -> dict:
    """cebra saves a hybrid model inside a wrapper (keys ``module.*``); cebra_pipe's
    hybrid solver trains the plain encoder, so the prefix goes."""
    if model_state and all(k.startswith(_HYBRID_PREFIX) for k in model_state):
        return collections.OrderedDict((k[len(_HYBRID_PREFIX):], v)
                                       for k, v in model_state.items())
    return model_state


def _label_kind(label_types: list | None) -> tuple[str, int | None]:
    """cebra_pipe's ``(label_kind_, label_dims_)`` from cebra's ``label_types_``."""
    continuous_dims, discrete = None, False
    for entry in label_types or []:
        dtype, shape = entry[0] if isinstance(entry, list) else entry  # multi: per session
        if np.dtype(dtype).kind == "f":
            continuous_dims = int(shape[1]) if len(shape) > 1 else 1
        else:
            discrete = True
    kind = {(False, False): "time", (True, False): "continuous", (False, True): "discrete",
            (True, True): "mixed"}[(continuous_dims is not None, discrete)]
    return kind, continuous_dims


def _check_layout(args: dict, state: dict, model_state: dict, path: Path) -> None:
    """The cebra_pipe model of the same name must take these tensors one to one."""
    name = args.get("model_architecture")
    if not models.is_registered(name):
        raise ValueError(f"{path}: model_architecture '{name}' has no cebra_pipe "
                         f"equivalent; loadable: {', '.join(SAME_LAYOUT_ARCHITECTURES)}.")
    multi = state["num_sessions_"] is not None
    dims = state["n_features_in_"] if multi else [state["n_features_in_"]]
    expected: dict[str, tuple] = {}
    for i, num_neurons in enumerate(dims):
        model = models.init(name, num_neurons=int(num_neurons),
                            num_units=int(args["num_hidden_units"]),
                            num_output=int(args["output_dimension"]))
        expected.update({(f"{i}." if multi else "") + k: tuple(v.shape)
                         for k, v in model.state_dict().items()})
        offset = model.get_offset()
    got = {k: tuple(v.shape) for k, v in model_state.items()}
    if got != expected:
        differing = sorted(set(got) ^ set(expected)) or sorted(
            k for k in got if got[k] != expected[k])
        raise ValueError(f"{path}: cebra's '{name}' has a different layer layout than "
                         f"cebra_pipe's (first difference: {differing[0]!r}); loadable "
                         f"architectures: {', '.join(SAME_LAYOUT_ARCHITECTURES)}.")
    file_offset = state.get("offset_")
    if isinstance(file_offset, _Placeholder):
        left, right = (file_offset.pickled_state.get(k) for k in ("left", "right"))
        if (left, right) != (offset.left, offset.right):
            raise ValueError(f"{path}: offset_ ({left}, {right}) differs from cebra_pipe's "
                             f"'{name}' ({offset.left}, {offset.right}).")


def read_cebra_file(path: str | os.PathLike, cebra_pipe_format: str,
                    param_names: set[str] | frozenset[str]) -> dict:
    """Translate a cebra 0.6.1 model file into a cebra_pipe estimator payload.

    Parameters
    ----------
    path
        A file written by ``cebra.CEBRA.save`` (either backend).
    cebra_pipe_format
        The format tag :meth:`cebra_pipe.CEBRA.load` expects in the payload.
    param_names
        Constructor parameters of :class:`cebra_pipe.CEBRA`.

    Returns
    -------
    dict
        ``{"meta": json, "fitted": json, "state": solver state}`` as written by
        :meth:`cebra_pipe.CEBRA.save`.
    """
    path = Path(path)
    checkpoint = _load_restricted(path)
    if isinstance(checkpoint, _Placeholder) and checkpoint.global_name == _CEBRA_ESTIMATOR:
        args, state, solver = _from_torch_backend(checkpoint, set(param_names), path)
    elif isinstance(checkpoint, dict) and {"args", "state", "state_dict"} <= set(checkpoint):
        args, state, solver = checkpoint["args"], checkpoint["state"], checkpoint["state_dict"]
    else:
        raise ValueError(f"{path} refers to cebra classes but is not a file written by "
                         "cebra.CEBRA.save (expected the keys args, state and state_dict, "
                         "or a pickled cebra.CEBRA).")
    for key in ("model_architecture", "num_hidden_units", "output_dimension"):
        if key not in args:
            raise ValueError(f"{path}: args has no '{key}'.")
    for key in ("n_features_in_", "num_sessions_"):
        if key not in state:
            raise ValueError(f"{path}: state has no '{key}' (was the model fitted?).")
    if state.get("solver_name_") == "single-session-hybrid":
        solver = {**solver, "model": _unwrap_hybrid(solver["model"])}
    _check_layout(args, state, solver["model"], path)
    ignored = {k: v for k, v in args.items() if k not in param_names and v is not None}
    if ignored:
        warnings.warn(f"{path}: cebra arguments without a cebra_pipe equivalent are ignored "
                      f"(they only affect training): {ignored}.", UserWarning, stacklevel=3)
    params = {k: v for k, v in args.items() if k in param_names}
    kind, dims = _label_kind(state.get("label_types_"))
    left, right = (state["offset_"].pickled_state[k] for k in ("left", "right")) \
        if isinstance(state.get("offset_"), _Placeholder) else (None, None)
    multi = state["num_sessions_"] is not None
    n_features = ([int(n) for n in state["n_features_in_"]] if multi
                  else int(state["n_features_in_"]))
    fitted = {"n_features_in_": n_features, "num_sessions_": state["num_sessions_"],
              "label_kind_": kind, "label_dims_": dims, "offset_": [left, right],
              "fit_calls": 1, "num_negatives_": None}
    if params.get("batch_size") is not None:
        fitted["num_negatives_"] = int(params["batch_size"]) * (state["num_sessions_"] or 1)
    if left is None:
        offset = models.init(args["model_architecture"], num_neurons=1, num_units=1,
                             num_output=1).get_offset()
        fitted["offset_"] = [offset.left, offset.right]
    log = solver.get("log") or {}
    solver_state = {
        "model": solver["model"], "criterion": solver["criterion"],
        "optimizer": solver["optimizer"],
        "loss": torch.as_tensor(solver.get("loss", []), dtype=torch.float64),
        "log": {k: torch.as_tensor(log.get(k, []), dtype=torch.float64) for k in LOG_KEYS}}
    meta = {"format": cebra_pipe_format, "params": jsonable(params),
            "versions": {"cebra": str(solver.get("version", "unknown")),
                         "converted_by": f"cebra_pipe {cebra_pipe.__version__}"}}
    return {"meta": json.dumps(meta), "fitted": json.dumps(fitted), "state": solver_state}


# -- writing ------------------------------------------------------------------------------
class _CebraOffset:
    """Pickles as ``cebra.data.datatypes.Offset(left, right)`` without importing cebra."""

    def __init__(self, left: int, right: int):
        self.left, self.right = int(left), int(right)

    def __reduce_ex__(self, protocol):
        # The same opcodes cebra writes for its __slots__ class: NEWOBJ, then BUILD
        # with (no dict state, slot state).
        return copyreg.__newobj__, (type(self),), (None, {"left": self.left,
                                                          "right": self.right})


class _CebraPickler(pickle._Pickler):
    """Writes ``_CebraOffset`` as the global ``cebra.data.datatypes Offset``.

    The pure-Python pickler is used because only it lets a subclass write a global
    by name; the C pickler would import ``cebra`` to check the class, and cebra_pipe
    never imports it.
    """

    def save_global(self, obj, name=None):
        if obj is _CebraOffset:
            self.write(pickle.GLOBAL + f"{_OFFSET[0]}\n{_OFFSET[1]}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


_CEBRA_PICKLE = types.SimpleNamespace(__name__="cebra_pipe.compat.cebra_pickle",
                                      Pickler=_CebraPickler, dump=pickle.dump)


def _cebra_label_types(kind: str, dims: int | None, sessions: int | None) -> list:
    """cebra's ``label_types_``: (dtype, shape) per label argument (per session).

    cebra only compares the dtype and the label dimension with new labels; the number
    of samples is not kept by cebra_pipe and is written as 0.
    """
    types_ = []
    if kind in ("continuous", "mixed"):
        types_.append((np.dtype("float32"), (0, dims or 1)))
    if kind in ("discrete", "mixed"):
        types_.append((np.dtype("int64"), (0,)))
    return [[t] * sessions for t in types_] if sessions else types_


def save_for_cebra(estimator, path: str | os.PathLike) -> None:
    """Write a fitted :class:`cebra_pipe.CEBRA` as a file ``cebra.CEBRA.load`` reads.

    The file has cebra 0.6.1's default (``backend="sklearn"``) layout: plain
    arguments, fitted state and solver state; ``cebra.CEBRA.load`` opens it with
    ``weights_only=True``.

    Parameters
    ----------
    estimator
        A fitted cebra_pipe estimator whose ``model_architecture`` is in
        :data:`SAME_LAYOUT_ARCHITECTURES`.
    path
        Output file; written atomically.
    """
    solver_state = estimator.state_dict_  # raises NotFittedError if not fitted
    name = estimator.model_architecture
    if name not in SAME_LAYOUT_ARCHITECTURES:
        raise ValueError(f"model_architecture '{name}' cannot be exported for cebra 0.6.1: "
                         "its layer layout differs there. Exportable: "
                         f"{', '.join(SAME_LAYOUT_ARCHITECTURES)}.")
    params = estimator.get_params()
    defaults = type(estimator)().get_params()
    dropped = {k: v for k, v in params.items()
               if k not in _CEBRA_ARGS and k != "random_state" and v != defaults.get(k)}
    if dropped:
        warnings.warn(f"cebra 0.6.1 has no equivalent of {dropped}; the exported model "
                      "embeds the same, but cebra would train it without them.", UserWarning,
                      stacklevel=2)
    args = {k: v for k, v in params.items() if k in _CEBRA_ARGS}
    args["optimizer_kwargs"] = tuple((k, tuple(v) if isinstance(v, list) else v)
                                     for k, v in dict(params["optimizer_kwargs"]).items())
    args["masking_kwargs"] = None
    sessions = estimator.num_sessions_
    solver_name = ("multi-session" if sessions else "single-session-hybrid" if
                   estimator.hybrid else "single-session-full" if estimator.batch_size is None
                   else "single-session")
    n_features = list(estimator.n_features_in_) if sessions else int(estimator.n_features_in_)
    state = {"label_types_": _cebra_label_types(estimator.label_kind_, estimator.label_dims_,
                                                sessions),
             "device_": str(estimator.device_), "n_features_": n_features,
             "n_features_in_": n_features, "num_sessions_": sessions,
             "offset_": _CebraOffset(estimator.offset_.left, estimator.offset_.right),
             "solver_name_": solver_name}
    model_state = solver_state["model"]
    if solver_name == "single-session-hybrid":
        model_state = collections.OrderedDict((_HYBRID_PREFIX + k, v)
                                              for k, v in model_state.items())
    state_dict = {"model": model_state, "optimizer": solver_state["optimizer"],
                  "loss": solver_state["loss"].float(), "decode": [],
                  "criterion": solver_state["criterion"],
                  "version": f"cebra_pipe {cebra_pipe.__version__}",
                  "log": {k: v.tolist() for k, v in solver_state["log"].items()},
                  "n_features": n_features}
    if sessions:
        state_dict["num_sessions"] = sessions
    checkpoint = {"args": args, "state": state, "state_dict": state_dict,
                  "metadata": {"backend": "sklearn",
                               "written_by": f"cebra_pipe {cebra_pipe.__version__}",
                               "torch_version": str(torch.__version__),
                               "numpy_version": np.__version__}}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer, pickle_module=_CEBRA_PICKLE, pickle_protocol=2)
    with atomic_write(path) as tmp:
        Path(tmp).write_bytes(buffer.getvalue())
