"""Helpers shared by the workflow entrypoints: errors, JSON arguments, files, provenance.

Every entrypoint is ``python -m cebra_pipe <step> ...``. Bad input raises
:class:`PipelineError` (or another ``ValueError``/``TypeError``/``OSError``) whose
message names the file, field or argument; :func:`run` turns it into one line on
stderr and a non-zero exit status. Outputs are written with
:func:`cebra_pipe.io.atomic_write`, so a failed step leaves no output behind.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import io
import json
import os
import platform
import shutil
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from cebra_pipe.arrays import check_embedding as check_array_embedding
from cebra_pipe.io import atomic_write

__all__ = ["PipelineError", "run", "json_arg", "sha256_file", "save_npz", "load_npz",
           "save_npy", "write_json", "write_tsv", "provenance", "write_provenance",
           "Session", "load_session", "load_split", "relpath", "all_or_nothing",
           "atomic_output", "check_embedding", "load_embedding"]

#: Exit status for invalid input (bad data, bad config); 1 is left for crashes.
EXIT_BAD_INPUT = 2
#: Exit status for a failed write (disk full, read-only or unwritable results).
EXIT_WRITE_ERROR = 3


class PipelineError(ValueError):
    """Invalid input to a workflow step; the message names the file or field."""


# ----------------------------------------------------------------------------- CLI

def json_arg(text: str) -> Any:
    """``argparse`` type: parse a JSON command-line argument."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not valid JSON ({err}): {text[:200]!r}") from None


def run(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None,
        step: str) -> int:
    """Run an entrypoint's ``main``; map expected failures to a message and exit status.

    Returns 0 on success, :data:`EXIT_BAD_INPUT` for invalid input and
    :data:`EXIT_WRITE_ERROR` when an output cannot be written. Unexpected errors
    propagate with their traceback (exit status 1). Invalid input is a ``ValueError``
    (:class:`PipelineError`, the loaders' ``LoadError`` ...) or a missing file; a bare
    ``TypeError`` or ``KeyError`` is a bug in cebra_pipe, not bad input, and is not
    masked as one.
    """
    try:
        main(argv)
    except (ValueError, FileNotFoundError) as err:
        print(f"cebra_pipe {step}: error: {_message(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            why = "the disk is full"
        elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST,
                           errno.EISDIR):
            why = "the results directory is not writable"
        else:
            why = "a file could not be read or written"
        print(f"cebra_pipe {step}: error: {why}: {_message(err)}. No partial output was "
              "kept; free space or fix permissions and rerun.", file=sys.stderr)
        return EXIT_WRITE_ERROR
    return 0


def _message(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.strerror}: '{err.filename}'"
    return str(err) or type(err).__name__


def relpath(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when it lies below it (for records)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path) if not path.is_absolute() else path.name


# ---------------------------------------------------------------------------- files

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """:func:`cebra_pipe.io.atomic_write` with ordinary permissions (0666 & ~umask)
    instead of the temporary file's 0600, so that results can be shared."""
    with atomic_write(path) as tmp:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())


@contextlib.contextmanager
def all_or_nothing(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """Remove every path in ``paths`` if the block fails, so a step leaves all of its
    outputs or none (each one is also written atomically)."""
    paths = [Path(p) for p in paths]
    try:
        yield
    except BaseException:
        for path in paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(value: Any) -> str:
    """Hex SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` as an ``.npz`` atomically and byte-for-byte reproducibly.

    ``numpy.savez`` stamps the current time into the archive; this writer uses a
    fixed timestamp so that equal arrays give equal files. Readable by ``np.load``
    without pickle.
    """
    with atomic_output(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, value in arrays.items():
                array = np.asarray(value)
                if array.dtype.kind == "O":
                    raise TypeError(f"refusing to write Python objects ({name!r}) to {path}.")
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.require(array, requirements="C"),
                                          allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                info.external_attr = 0o644 << 16
                archive.writestr(info, buffer.getvalue())


def load_npz(path: str | os.PathLike, what: str = "file") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` written by :func:`save_npz` (never unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, f"No such {what}", str(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{what} '{path}' is corrupt or not a pipeline .npz file "
                            f"({type(err).__name__}: {err}); delete it and rerun the "
                            "step that makes it.") from err


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write one array as ``.npy`` atomically (deterministic bytes)."""
    with atomic_output(path) as tmp:
        np.save(tmp, np.require(array, requirements="C"), allow_pickle=False)


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Write ``value`` as indented, key-sorted JSON atomically."""
    text = json.dumps(value, indent=2, sort_keys=True, default=_json_default) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def write_tsv(path: str | os.PathLike, frame: Any) -> None:
    """Write a pandas DataFrame as TSV atomically (full float precision, no index)."""
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.10g", lineterminator="\n")


# ------------------------------------------------------------------------ provenance

_PACKAGES = ("cebra_pipe", "numpy", "torch", "scikit-learn", "scipy", "pandas", "snakemake",
             "papermill", "nbconvert", "matplotlib")


def library_versions(packages: Iterable[str] = _PACKAGES) -> dict[str, str]:
    """Installed versions (``"not installed"`` when absent), without importing them."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def provenance(step: str, *, params: Any = None, inputs: Iterable[str | os.PathLike] = (),
               config_sha256: str | None = None, seeds: Iterable[int] | None = None,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Where a result came from: step, parameter and config hashes, input hashes, seeds,
    library versions. Paths are recorded relative to the working directory."""
    record: dict[str, Any] = {
        "step": step,
        "params": params,
        "params_sha256": sha256_json(params),
        "config_sha256": config_sha256 or os.environ.get("CEBRA_PIPE_CONFIG_SHA256"),
        "inputs": {relpath(p): sha256_file(p) for p in inputs},
        "seeds": None if seeds is None else [int(s) for s in seeds],
        "versions": library_versions(),
    }
    if extra:
        record.update(extra)
    return record


def write_provenance(path: str | os.PathLike, step: str, **kwargs: Any) -> None:
    """Write :func:`provenance` as JSON to ``path``."""
    write_json(path, provenance(step, **kwargs))


# ------------------------------------------------------------------- session files

class Session:
    """One ingested session: neural data, named labels and metadata.

    Parameters
    ----------
    neural : (time, neurons) float32
    labels : name -> (time,) or (time, d) array
    trial : (time,) int64 or None
    meta : JSON-serialisable metadata (animal, session, sources, ``label_types``: each
        label's kind, ``continuous`` or ``discrete``, as the config declared it)
    segment : (time,) int64 or None
        Segment ids: a seam (trial change, dropped bins) lies wherever consecutive ids
        differ. ``None``: the trial changes, if the session has trials.
    time : (time,) bin centres in seconds (recordings aligned at ingest) or None
    """

    def __init__(self, neural: np.ndarray, labels: dict[str, np.ndarray],
                 trial: np.ndarray | None, meta: dict[str, Any],
                 segment: np.ndarray | None = None, time: np.ndarray | None = None):
        self.neural, self.labels, self.trial, self.meta = neural, labels, trial, meta
        self.segment = trial if segment is None else segment
        self.time = time

    def sample_period(self, default: float | None = None) -> float | None:
        """Seconds per sample: the bin size ingest aligned the recording to, else the
        median step of its bin times, else ``default`` (prepared arrays carry no time
        base; the config may give one)."""
        bin_size = (self.meta.get("alignment") or {}).get("bin_size")
        if bin_size:
            return float(bin_size)
        if self.time is not None and len(self.time) > 1:
            return float(np.median(np.diff(self.time)))
        return default

    @property
    def name(self) -> str:
        return f"{self.meta.get('animal')}/{self.meta.get('session')}"

    def label_type(self, name: str) -> str:
        """The kind of label ``name`` (``continuous`` or ``discrete``) from the config."""
        return self.meta["label_types"][name]

    def segments_at(self, idx: np.ndarray) -> np.ndarray | None:
        """Segment ids ``(len(idx),)`` of the samples ``idx`` (sorted time steps), for
        ``CEBRA.fit(..., segments=)`` / ``transform``: a new segment starts at every seam
        of the session and wherever ``idx`` skips time steps (held-out parts are gaps).
        ``None`` when the samples form one unbroken segment."""
        idx = np.asarray(idx)
        seam = np.diff(idx) != 1
        if self.segment is not None:
            seam |= np.diff(self.segment[idx]) != 0
        if not seam.any():
            return None
        return np.concatenate([[0], np.cumsum(seam)]).astype(np.int64)


def load_session(path: str | os.PathLike) -> Session:
    """Read a session file written by the ``ingest`` step."""
    data = load_npz(path, "session file")
    if "neural" not in data or "meta" not in data:
        raise PipelineError(f"session file '{path}' lacks 'neural' or 'meta'; it was not "
                            "written by `python -m cebra_pipe ingest`.")
    try:
        meta = json.loads(str(data["meta"].item()))
    except (ValueError, TypeError) as err:  # JSONDecodeError, or 'meta' not a scalar
        raise PipelineError(f"session file '{path}': field 'meta' is not the JSON object "
                            f"ingest writes ({err}); rerun ingest.") from None
    labels = {key[len("label_"):]: value for key, value in data.items()
              if key.startswith("label_")}
    required = {"animal", "session"}
    missing = sorted(required - set(meta)) if isinstance(meta, dict) else sorted(required)
    if not missing:
        meta["label_types"] = legacy_label_types(meta.get("label_types"), labels)
    if missing:
        raise PipelineError(f"session file '{path}': field 'meta' lacks {missing}; it was not "
                            "written by this version of ingest, rerun ingest.")
    segment = data.get("segment")
    if segment is not None and (segment.shape != (len(data["neural"]),)
                                or segment.dtype.kind not in "iu"):
        raise PipelineError(f"session file '{path}': 'segment' must be {len(data['neural'])} "
                            f"integer ids (time,), got shape {segment.shape} dtype "
                            f"{segment.dtype}; rerun ingest.")
    return Session(data["neural"], labels, data.get("trial"), meta, segment, data.get("time"))


def legacy_label_types(stored: Any, labels: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Each label's kind: ``stored`` (the meta's ``label_types``), completed for session
    files written before ingest stored every kind.

    This is the only place a kind is guessed from a dtype (ingest stored integer
    arrays for discrete labels and float arrays for continuous ones); steps read
    :meth:`Session.label_type`.
    """
    kinds = dict(stored) if isinstance(stored, Mapping) else {}
    for name, values in labels.items():
        kinds.setdefault(name, "discrete" if np.asarray(values).dtype.kind in "biu"
                         else "continuous")
    return kinds


def check_embedding(array: np.ndarray, where: str) -> np.ndarray:
    """``array`` if it is a finite numeric ``(time, dims)`` embedding, else a PipelineError
    naming ``where`` (e.g. ``embedding file '...'``)."""
    try:
        check_array_embedding(array, where)
    except (ValueError, TypeError) as err:
        raise PipelineError(f"{err} Rerun training (NaN values mean it diverged: lower the "
                            "learning_rate).") from None
    return array  # as stored: the checked copy is float64


def load_embedding(path: str | os.PathLike) -> np.ndarray:
    """A finite ``(time, dims)`` embedding from an ``.npy`` file written by training."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise PipelineError(f"embedding file '{path}' is missing or corrupt: {err}; rerun "
                            "training.") from None
    return check_embedding(array, f"embedding file '{path}'")


def load_model(path: str | os.PathLike, device: str = "cpu") -> Any:
    """A trained :class:`cebra_pipe.CEBRA` from a model file written by training."""
    from cebra_pipe import CEBRA

    try:
        return CEBRA.load(path, map_location=device)
    except FileNotFoundError:
        raise PipelineError(f"model file '{path}' is missing; rerun training.") from None
    except ValueError as err:
        raise PipelineError(f"model file '{path}': {err}") from None


def load_split(path: str | os.PathLike, num_timesteps: int | None = None
               ) -> dict[str, np.ndarray]:
    """``{"train": idx, "valid": idx}`` from a split file, checked against ``num_timesteps``."""
    data = load_npz(path, "split file")
    for key in ("train", "valid"):
        if key not in data:
            raise PipelineError(f"split file '{path}' has no '{key}' indices.")
        if num_timesteps is not None and len(data[key]) and data[key].max() >= num_timesteps:
            raise PipelineError(f"split file '{path}' indexes past the session's "
                                f"{num_timesteps} time steps; rerun the split step.")
    return {"train": data["train"], "valid": data["valid"]}


def training_labels(session: Session, names: Sequence[str], idx: np.ndarray,
                    shuffle_seed: Sequence[int] | None = None) -> tuple[np.ndarray, ...]:
    """The labels ``names`` at time steps ``idx``, as ``fit`` takes them.

    Continuous labels are concatenated into one ``(time, d)`` float32 array; a
    discrete label is ``(time,)`` int64. With ``shuffle_seed`` all labels are permuted
    in time by one shared random permutation (the shuffled-label control).

    Returns
    -------
    ``()`` (no labels), ``(continuous,)``, ``(discrete,)`` or ``(continuous, discrete)``
    """
    missing = [n for n in names if n not in session.labels]
    if missing:
        raise PipelineError(f"session {session.name}: label(s) {missing} are not in the "
                            f"session file (it has {sorted(session.labels)}); rerun ingest.")
    continuous = [session.labels[n][idx].reshape(len(idx), -1) for n in names
                  if session.label_type(n) == "continuous"]
    discrete = [session.labels[n][idx] for n in names if session.label_type(n) == "discrete"]
    out: list[np.ndarray] = []
    if continuous:
        out.append(np.concatenate(continuous, axis=1).astype(np.float32))
    if discrete:
        out.append(discrete[0].astype(np.int64))
    if shuffle_seed is not None and out:
        perm = np.random.default_rng([int(s) for s in shuffle_seed]).permutation(len(idx))
        out = [values[perm] for values in out]
    return tuple(out)


def control_labels(session: Any, spec: dict[str, Any], idx: np.ndarray,
                   seed_parts: Sequence[int]) -> tuple[np.ndarray, ...]:
    """The labels a variant trains or is scored on at time steps ``idx``.

    For a training null (``spec["shuffle"]``) every label is reordered by one null
    order of kind ``spec["null_kind"]`` (circular shift by at least ``min_shift``,
    samples or a duration converted with the session's sample period (``bin_size``
    for sessions without a time base), or sample-wise permutation; inside trials when
    ``within_trials`` and the session has them), drawn from ``seed_parts`` and the
    null's index.
    """
    from cebra_pipe.hypothesis.nulls import null_orders, to_samples

    labels = training_labels(session, spec["names"], idx)
    if not spec["shuffle"] or not labels:
        return labels
    trials = session.trial[idx] if spec["within_trials"] and session.trial is not None else None
    rng = np.random.default_rng([int(s) for s in seed_parts] + [spec["null_index"]])
    try:
        min_shift = to_samples(spec["min_shift"], session.sample_period(spec.get("bin_size")),
                               "hypotheses.min_shift")
        order = null_orders(spec["null_kind"], len(idx), 1, min_shift=min_shift,
                            trials=trials, seed=rng)[0]
    except ValueError as err:
        raise PipelineError(f"session {session.name}: training null of {spec['names']}: "
                            f"{err}") from None
    return tuple(values[order] for values in labels)
