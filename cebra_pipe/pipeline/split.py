"""``python -m cebra_pipe split``: a deterministic train/valid split of one session.

* ``blocks``: time is cut into ``num_blocks`` contiguous blocks and the last
  ``valid_fraction`` of each block is held out (one block: the last part of the
  session, as in the CEBRA quick start).
* ``trials``: whole trials are held out, every ``round(1 / valid_fraction)``-th trial
  in order of appearance, so that train and valid cover the same behaviour.
* ``auto``: ``trials`` when the session has a trial index with enough trials, else
  ``blocks``.
* ``stratified``: for every class of the discrete labels (every combination of them),
  the last ``valid_fraction`` of that class's time steps is held out, one contiguous
  stretch of the class's own time course each; for files sorted by class.

The split must represent the data. Every class of a discrete label has to appear in
both train and valid, else the step fails naming the label and the missing classes.
For a continuous label the meta records, per dimension, the share of the train range
that valid covers and the share of valid outside the train range, and a warning when
valid covers less than :data:`MIN_RANGE_COVERED` or lies outside more than
:data:`MAX_OUTSIDE`. The warnings are printed to the job log, kept in the split file's
``meta["warnings"]`` and its provenance, and shown at the top of the per-animal and
overview reports (:func:`read_warnings`).

Output: an ``.npz`` with sorted int64 index arrays ``train`` and ``valid`` and
``meta`` (JSON), plus a provenance JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from cebra_pipe.data.splits import block_split
from cebra_pipe.pipeline.common import (PipelineError, Session, all_or_nothing,
                                        canonical_json, load_npz, load_session, run,
                                        save_npz, write_provenance)

STEP = "split"
METHODS = ("auto", "blocks", "trials", "stratified")
#: Least share of a continuous label's train range that valid should cover.
MIN_RANGE_COVERED = 0.5
#: Largest share of valid samples that may lie outside the train range.
MAX_OUTSIDE = 0.05


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m cebra_pipe {STEP}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--session", required=True, help="session file from the ingest step")
    parser.add_argument("--method", choices=METHODS, default="auto")
    parser.add_argument("--valid-fraction", type=float, default=0.2)
    parser.add_argument("--num-blocks", type=int, default=1)
    parser.add_argument("--min-samples", type=int, default=100,
                        help="fewest time steps allowed in either split")
    parser.add_argument("--config-sha256", default=None)
    parser.add_argument("--out", required=True, help="split file to write (.npz)")
    parser.add_argument("--provenance", required=True)
    return parser


def trial_split(trial: np.ndarray, valid_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out every ``k``-th trial (``k = round(1 / valid_fraction)``), by first appearance.

    Parameters
    ----------
    trial : (time,) int trial index per time step
    """
    order = trial[np.sort(np.unique(trial, return_index=True)[1])]
    step = max(2, int(round(1.0 / valid_fraction)))
    held = order[step - 1::step]
    is_valid = np.isin(trial, held)
    return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)


def stratified_split(strata: np.ndarray, valid_fraction: float, where: str = "session"
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last ``valid_fraction`` of each class's time steps (at least one).

    Parameters
    ----------
    strata : (time,) int class id per time step (e.g. from :func:`class_ids`)
    """
    is_valid = np.zeros(len(strata), dtype=bool)
    for stratum in np.unique(strata):
        steps = np.flatnonzero(strata == stratum)
        if len(steps) < 2:
            raise PipelineError(f"{where}: split.method 'stratified': class {stratum} has "
                                f"{len(steps)} time step; a class needs at least 2 to be in "
                                "both train and valid.")
        held = min(len(steps) - 1, max(1, int(round(len(steps) * valid_fraction))))
        is_valid[steps[-held:]] = True
    return np.flatnonzero(~is_valid), np.flatnonzero(is_valid)


def class_ids(labels: Sequence[np.ndarray]) -> np.ndarray:
    """One id per combination of the discrete ``labels`` (each ``(time,)`` or ``(time, d)``).

    Returns
    -------
    (time,) int64
    """
    columns = np.column_stack([np.asarray(label).reshape(len(label), -1) for label in labels])
    return np.unique(columns, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def make_split(num_timesteps: int, trial: np.ndarray | None, method: str, valid_fraction: float,
               num_blocks: int, min_samples: int, where: str = "session",
               strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Choose and apply the split method; returns ``(train, valid, method_used)``.

    ``strata`` : (time,) class ids, needed by ``method="stratified"``.
    """
    if not 0.0 < valid_fraction < 1.0:
        raise PipelineError(f"{where}: split.valid_fraction must lie in (0, 1), got "
                            f"{valid_fraction}.")
    if num_blocks < 1:
        raise PipelineError(f"{where}: split.num_blocks must be >= 1, got {num_blocks}.")
    step = max(2, int(round(1.0 / valid_fraction)))
    enough_trials = trial is not None and len(np.unique(trial)) >= step
    if method == "trials" and not enough_trials:
        found = 0 if trial is None else len(np.unique(trial))
        raise PipelineError(f"{where}: split.method 'trials' needs a trial index with at "
                            f"least {step} trials, found {found} (set split.trial_key or use "
                            "method 'blocks').")
    if method == "stratified":
        if strata is None:
            raise PipelineError(f"{where}: split.method 'stratified' needs a discrete label "
                                "in the session; it has none (use method 'blocks' or "
                                "'trials').")
        train, valid = stratified_split(strata, valid_fraction, where)
        used = "stratified"
    elif method == "trials" or (method == "auto" and enough_trials):
        train, valid = trial_split(trial, valid_fraction)
        used = "trials"
    else:
        train, valid = block_split(num_timesteps, valid_fraction, num_blocks)
        used = "blocks"
    for name, idx in (("train", train), ("valid", valid)):
        if len(idx) < min_samples:
            raise PipelineError(f"{where}: the {name} split has {len(idx)} time steps, fewer "
                                f"than split.min_samples={min_samples} (session length "
                                f"{num_timesteps}, method {used}); use a longer session, "
                                "another valid_fraction, or lower min_samples.")
    return train.astype(np.int64), valid.astype(np.int64), used


def check_classes(name: str, label: np.ndarray, train: np.ndarray, valid: np.ndarray,
                  where: str = "session") -> dict[str, list[int]]:
    """Time steps per class of a discrete label in train and valid; error if one lacks a class.

    Parameters
    ----------
    label : (time,) or (time, d) discrete label
    train, valid : int indices into time

    Returns
    -------
    dict
        ``{class: [train steps, valid steps]}``.
    """
    ids = class_ids([label])
    values = np.asarray(label).reshape(len(label), -1)
    names = {int(i): _class_name(values[np.argmax(ids == i)]) for i in np.unique(ids)}
    n_train = np.bincount(ids[train], minlength=len(names))
    n_valid = np.bincount(ids[valid], minlength=len(names))
    counts = {names[i]: [int(n_train[i]), int(n_valid[i])] for i in sorted(names)}
    missing = {part: [c for c, n in counts.items() if n[k] == 0]
               for k, part in enumerate(("train", "valid"))}
    if missing["train"] or missing["valid"]:
        lacks = "; ".join(f"{part} has no time step of class(es) {classes}"
                          for part, classes in missing.items() if classes)
        raise PipelineError(f"{where}: discrete label '{name}': {lacks}, so the split does "
                            f"not represent the data (the recording may be sorted by class). "
                            "Set split.method: stratified to hold out part of every class, "
                            "or split by trials (split.method: trials with split.trial_key).")
    return counts


def _class_name(row: np.ndarray) -> str:
    return ",".join(str(v.item()) for v in row)


def range_coverage(label: np.ndarray, train: np.ndarray, valid: np.ndarray
                   ) -> list[dict[str, float]]:
    """Per dimension of a continuous label: how well valid's values match train's range.

    Parameters
    ----------
    label : (time,) or (time, d) continuous label

    Returns
    -------
    list of dict, one per dimension
        ``covered``: share of the train range [min, max] that valid's range covers;
        ``outside``: share of valid time steps outside the train range.
    """
    values = np.asarray(label, dtype=np.float64).reshape(len(label), -1)
    out = []
    for column in values.T:
        tr, va = column[train], column[valid]
        tr, va = tr[np.isfinite(tr)], va[np.isfinite(va)]
        if len(tr) == 0 or len(va) == 0:
            out.append({"covered": 0.0, "outside": 1.0})
            continue
        lo, hi = tr.min(), tr.max()
        overlap = max(0.0, min(hi, va.max()) - max(lo, va.min()))
        covered = overlap / (hi - lo) if hi > lo else float(np.any(va == lo))
        outside = float(np.mean((va < lo) | (va > hi)))
        out.append({"covered": round(float(covered), 4), "outside": round(outside, 4)})
    return out


def representation(session: Session, train: np.ndarray, valid: np.ndarray, where: str = "session"
                   ) -> tuple[dict[str, Any], list[str]]:
    """Check the split against every label of ``session``; returns ``(report, warnings)``.

    Raises :class:`PipelineError` when a discrete class is missing from train or valid.
    """
    report: dict[str, Any] = {}
    warnings: list[str] = []
    for name in sorted(session.labels):
        label = session.labels[name]
        if session.label_type(name) == "discrete":
            report[name] = {"classes": check_classes(name, label, train, valid, where)}
            continue
        dims = range_coverage(label, train, valid)
        report[name] = {"range": dims}
        for d, dim in enumerate(dims):
            if dim["covered"] < MIN_RANGE_COVERED or dim["outside"] > MAX_OUTSIDE:
                warnings.append(
                    f"continuous label '{name}' (dimension {d}): valid covers "
                    f"{100 * dim['covered']:.0f}% of the train range and "
                    f"{100 * dim['outside']:.0f}% of valid lies outside it (wanted >= "
                    f"{100 * MIN_RANGE_COVERED:.0f}% and <= {100 * MAX_OUTSIDE:.0f}%): "
                    "decoding scores on valid may not represent the session.")
    return report, warnings


def read_warnings(path: str | os.PathLike) -> list[str]:
    """The warnings of a split file (why its split may not represent the session).

    Split files written before warnings were stored give ``[]``.
    """
    data = load_npz(path, "split file")
    if "meta" not in data:
        return []
    try:
        meta = json.loads(str(data["meta"].item()))
    except (ValueError, TypeError) as err:
        raise PipelineError(f"split file '{path}': field 'meta' is not the JSON object the "
                            f"split step writes ({err}); rerun the split step.") from None
    return [str(w) for w in meta.get("warnings", [])] if isinstance(meta, dict) else []


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    session = load_session(args.session)
    where = f"session {session.name} ('{args.session}')"
    discrete = [session.labels[n] for n in sorted(session.labels)
                if session.label_type(n) == "discrete"]
    train, valid, used = make_split(len(session.neural), session.trial, args.method,
                                    args.valid_fraction, args.num_blocks, args.min_samples,
                                    where, strata=class_ids(discrete) if discrete else None)
    labels, warnings = representation(session, train, valid, where)
    meta = {"method": used, "requested_method": args.method,
            "valid_fraction": args.valid_fraction, "num_blocks": args.num_blocks,
            "num_train": int(len(train)), "num_valid": int(len(valid)),
            "labels": labels, "warnings": warnings}
    for warning in warnings:
        print(f"split {session.name}: warning: {warning}", file=sys.stderr)
    with all_or_nothing([args.out, args.provenance]):
        save_npz(args.out, {"train": train, "valid": valid, "meta": np.array(canonical_json(meta))})
        write_provenance(args.provenance, STEP, params=meta, inputs=[args.session],
                         config_sha256=args.config_sha256)
    print(f"split {session.name}: {len(train)} train / {len(valid)} valid time steps "
          f"({used}) -> {args.out}")


def cli(argv: Sequence[str] | None = None) -> int:
    return run(main, argv, STEP)
