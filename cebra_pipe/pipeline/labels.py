"""One label definition per session: sheet overrides, normalisation and shared ranges.

The config's ``labels`` section defines each label once for the cohort. Sessions that
store a label under another key, or in another unit, say so in the sessions sheet
(columns ``label_keys`` and ``label_units``, ``name=value;name2=value2``):
:func:`session_labels` applies a row's overrides. A continuous label whose range differs
between animals (metres and centimetres, tracks of different length) is rescaled per
session at ingest when its config field ``normalize`` is ``range`` or ``zscore``
(:func:`normalize`); the offset and scale are kept in the session file's meta.

Steps that combine sessions (between-session consistency, multi-session training) call
:func:`check_shared_range`: without normalisation, sessions whose ranges do not overlap
fail with a message naming the sessions, their ranges and units, and the fix.

Imports numpy only (no torch), so table-only steps stay light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cebra_pipe.pipeline.common import PipelineError, Session
from cebra_pipe.pipeline.config import NORMALIZE_UNITS, parse_label_map

__all__ = ["MIN_SHARED_RANGE", "MIN_SHARED_RANGE_TRAINING", "session_labels", "normalize", "label_unit",
           "describe_labels", "check_shared_range"]

#: Least share of the sessions' joint range that each session's own range must cover
#: when sessions are aligned on a label's values (between-session consistency): label
#: bins outside a session's range hold none of its samples.
MIN_SHARED_RANGE = 0.9
#: The same for multi-session training, which only needs the labels on one scale
#: (animals may cover part of a track): a session spanning less than a fifth of the
#: joint range is in other units (cm beside m) or on another track.
MIN_SHARED_RANGE_TRAINING = 0.2


def session_labels(labels: Mapping[str, Mapping[str, Any]], row: Mapping[str, Any]
                   ) -> dict[str, dict[str, Any]]:
    """The config's label specs with the sheet row's ``label_keys``/``label_units`` applied.

    Raises
    ------
    PipelineError naming the row and column for a malformed cell or an unknown label.
    """
    where = f"sheet row {row.get('animal')}/{row.get('session')}"
    out = {name: dict(spec) for name, spec in labels.items()}
    for column, field in (("label_keys", "key"), ("label_units", "unit")):
        try:
            mapping = parse_label_map(row.get(column), labels, f"{where}: column '{column}'")
        except ValueError as err:
            raise PipelineError(str(err)) from None
        for name, value in mapping.items():
            out[name][field] = value
    return out


def normalize(values: np.ndarray, method: str, where: str
              ) -> tuple[np.ndarray, dict[str, Any]]:
    """Rescale a continuous label per dimension.

    Parameters
    ----------
    values : (time, d) float
    method : ``none``, ``range`` (min 0, max 1) or ``zscore`` (mean 0, SD 1)

    Returns
    -------
    values : (time, d) float32
    info : ``{"method", "offset": [d], "scale": [d]}``; original = values * scale + offset
    """
    values = np.asarray(values, dtype=np.float64)
    if method == "none":
        return values.astype(np.float32), {"method": "none"}
    if method == "range":
        offset, scale = values.min(axis=0), values.max(axis=0) - values.min(axis=0)
    elif method == "zscore":
        offset, scale = values.mean(axis=0), values.std(axis=0)
    else:
        raise PipelineError(f"{where}: normalize must be one of 'none', 'range', 'zscore', "
                            f"got {method!r}.")
    flat = np.flatnonzero(~(scale > 0))
    if flat.size:
        raise PipelineError(f"{where}: cannot normalize ({method}): dimension {int(flat[0])} "
                            f"is constant ({offset[flat[0]]:.4g}) in this session.")
    normalized = ((values - offset) / scale).astype(np.float32)
    return normalized, {"method": method, "offset": offset.tolist(), "scale": scale.tolist()}


def label_unit(session: Session, name: str, default: str = "label units") -> str:
    """The unit of ``name``'s stored values in ``session`` (after any normalisation).

    Session files written before units were stored give ``default``.
    """
    return (session.meta.get("label_units") or {}).get(name, default)


def describe_labels(session: Session) -> str:
    """``"direction (discrete), position (continuous, cm; normalised: range)"``: each
    label's kind, and the unit and normalisation of continuous labels."""
    parts = []
    for name, kind in sorted(session.meta["label_types"].items()):
        details = [kind]
        if kind == "continuous" and "label_units" in session.meta:
            method = (session.meta.get("label_normalization") or {}).get(name)
            details.append(f"{method['unit']}; normalised: {method['method']}" if method
                           else label_unit(session, name))
        parts.append(f"{name} ({', '.join(details)})")
    return ", ".join(parts)


def _span(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    return flat.min(axis=0), flat.max(axis=0)


def check_shared_range(sessions: Sequence[Session], name: str, purpose: str,
                       min_shared: float = MIN_SHARED_RANGE) -> None:
    """Fail when sessions' values of continuous label ``name`` do not share one range.

    Each session's range must cover ``min_shared`` of the sessions' joint range, per
    dimension (labels normalised by range always do). Discrete labels pass.

    Raises
    ------
    PipelineError naming the label, the sessions that differ (ranges, units) and the fix.
    """
    if len(sessions) < 2 or any(name not in s.labels or s.label_type(name) != "continuous"
                                for s in sessions):
        return  # a missing label is reported by the step that reads it
    spans = [_span(s.labels[name]) for s in sessions]
    low = np.min([lo for lo, _ in spans], axis=0)
    high = np.max([hi for _, hi in spans], axis=0)
    joint = np.where(high > low, high - low, 1.0)
    covered = np.array([(hi - lo) / joint for lo, hi in spans])  # (sessions, d)
    narrow = [i for i in range(len(sessions)) if np.any(covered[i] < min_shared)]
    if not narrow:
        return
    widest = int(np.argmax(covered.min(axis=1)))

    def describe(i: int) -> str:
        lo, hi = spans[i]
        ranges = ", ".join(f"{a:.4g} to {b:.4g}" for a, b in zip(lo, hi))
        return f"{sessions[i].name} {ranges} ({label_unit(sessions[i], name)})"

    units = {label_unit(s, name) for s in sessions}
    cause = ("they store it in different units" if len(units) > 1
             else "the units or track lengths may differ")
    raise PipelineError(
        f"label '{name}' has different ranges in the sessions combined for {purpose}: "
        f"{'; '.join(describe(i) for i in narrow)} cover less than "
        f"{100 * min_shared:.0f}% of the joint range, e.g. {describe(widest)} ({cause}). "
        f"Set labels.{name}.normalize: range (or zscore) in the config to rescale each "
        "session at ingest, or convert the values to one unit; give each session's unit in "
        "the sessions sheet column label_units (e.g. position=cm).")
