"""Checks and job lists for the workflow configuration and sessions sheet.

``workflow/rules/common.smk`` validates ``config`` and the sheet against the JSON
schemas (which fill defaults), then calls :func:`check_config` and
:func:`check_sheet` for the rules a schema cannot express (references between
sections, duplicate ids, missing files) and builds the job lists with
:func:`single_variants` and :func:`multi_variants`. Everything raises
:class:`ConfigError` naming the field, row or file, before any job runs.

This module imports neither torch nor snakemake, so parsing the workflow stays fast.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cebra_pipe.pipeline.layout import (RESERVED_ANIMAL_NAMES, is_shuffled, shuffled_labels,
                                        split_shuffled)

NO_LABELS = "none"
SYNTHETIC_PREFIX = "synthetic:"
#: The unit of a label's values after each ``labels.<name>.normalize`` method.
NORMALIZE_UNITS = {"range": "fraction of the session's range",
                   "zscore": "SD of the session"}

__all__ = ["ConfigError", "Variant", "check_config", "check_sheet", "single_variants",
           "multi_variants", "describe_schema_error", "describe_sheet_error", "parse_synthetic",
           "check_model_architectures", "read_sheet", "model_params", "label_spec",
           "parse_label_map", "label_units"]


class ConfigError(ValueError):
    """The configuration or sessions sheet is invalid; the message names the field."""


@dataclass(frozen=True)
class Variant:
    """One trained configuration: a model with one label set (or none), maybe shuffled."""

    model: str
    labels: str  # wildcard value: "none", a label set, or a control (layout.shuffled_labels)

    @property
    def label_set(self) -> str | None:
        """The label set's name, without the shuffled suffix (None for CEBRA-Time)."""
        if self.labels == NO_LABELS:
            return None
        return split_shuffled(self.labels)[0]

    @property
    def shuffled(self) -> bool:
        return is_shuffled(self.labels)

    @property
    def null_index(self) -> int:
        """Which training null a shuffled variant is (0 for real-label variants)."""
        return split_shuffled(self.labels)[1] or 0


# ------------------------------------------------------------------------- schema

def describe_schema_error(error: Any, where: str) -> str:
    """One line naming the failing field of a ``jsonschema.ValidationError``."""
    path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]"
                    for p in error.absolute_path).replace(".[", "[")
    field = path or "(top level)"
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return f"{where}: field '{field}': {message}"


def describe_sheet_error(exc: BaseException, where: str) -> str | None:
    """One line naming the row and field of a failed sessions-sheet validation.

    ``exc`` is the ``WorkflowError`` of ``snakemake.utils.validate(sheet, schema)``;
    its text says ``Error validating row <i> of data frame`` (``i`` counts data rows
    from 0; the line printed counts from 1, as :func:`check_sheet` does). Returns None
    when ``exc`` holds no schema error.
    """
    found = find_schema_error(exc)
    if found is None:
        return None
    texts = [a for a in getattr(exc, "args", ()) if isinstance(a, str)] + [str(exc)]
    row = next((m for t in texts if (m := re.search(r"validating row (\d+)", t))), None)
    if row is not None:
        where += f", row {int(row.group(1)) + 1}"
    return describe_schema_error(found, where)


def find_schema_error(exc: BaseException) -> Any | None:
    """The ``jsonschema.ValidationError`` inside a snakemake ``WorkflowError`` (or None)."""
    seen: list[BaseException] = [exc]
    while seen:
        current = seen.pop()
        if type(current).__name__ == "ValidationError" and hasattr(current, "absolute_path"):
            return current
        seen.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                seen.append(linked)
    return None


# ------------------------------------------------------------------------- config

def _check_finite(value: Any, field: str = "") -> None:
    """Every number in the config must be finite: the JSON schema lets ``.inf`` pass
    ``exclusiveMinimum: 0`` and ``.nan`` pass every bound."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config: field '{field or '(top level)'}': {value} is not a finite "
                          "number.")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_finite(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, f"{field}[{i}]")


def _check_attainable_p(hypotheses: Mapping[str, Any]) -> None:
    """Refuse a null count whose smallest p-value, 1 / (1 + num_nulls), cannot fall
    below alpha: every label set would be "not supported" whatever the data."""
    if "num_nulls" not in hypotheses or "alpha" not in hypotheses:
        return
    smallest = 1.0 / (1 + hypotheses["num_nulls"])
    if smallest >= hypotheses["alpha"]:
        raise ConfigError(
            f"config: field 'hypotheses.num_nulls': {hypotheses['num_nulls']} nulls give a "
            f"smallest attainable p-value of {smallest:.4g}, not below "
            f"hypotheses.alpha={hypotheses['alpha']}, so no label set could be called "
            f"encoded; use at least {int(1 / hypotheses['alpha'])} nulls.")


def check_config(config: Mapping[str, Any]) -> None:
    """Cross-field checks of a schema-validated config (defaults filled).

    Raises
    ------
    ConfigError naming the field: a label set or model using an unknown label, a model
    using an unknown label set, conditional 'time' with label sets, a multi-session
    entry for an unknown model or label set, or one mixing label types.
    """
    _check_finite(config)
    labels = config["labels"]
    label_sets = config.get("label_sets", {})
    for name, members in label_sets.items():
        for label in members:
            if label not in labels:
                raise ConfigError(f"config: field 'label_sets.{name}': unknown label "
                                  f"{label!r}; labels are {sorted(labels)}.")
    for model, spec in config["models"].items():
        where = f"config: field 'models.{model}"
        for name in spec.get("label_sets", []):
            if name not in label_sets:
                raise ConfigError(f"{where}.label_sets': unknown label set {name!r}; "
                                  f"label_sets are {sorted(label_sets)}.")
        if spec.get("conditional") == "time" and spec.get("label_sets"):
            raise ConfigError(f"{where}.conditional': 'time' (CEBRA-Time) uses no labels, "
                              f"but label_sets is {spec['label_sets']}; use 'time_delta'.")
        if spec.get("conditional") != "time" and not spec.get("label_sets"):
            raise ConfigError(f"{where}.label_sets': conditional "
                              f"{spec.get('conditional')!r} needs at least one label set "
                              "(or use conditional 'time' for CEBRA-Time).")
        if spec.get("conditional") == "delta" and not spec.get("delta"):
            raise ConfigError(f"{where}.delta': conditional 'delta' needs delta > 0.")
        for name in spec.get("label_sets", []):
            discrete = [label for label in label_sets[name]
                        if labels[label]["type"] == "discrete"]
            if len(discrete) > 1:
                raise ConfigError(f"config: field 'label_sets.{name}': at most one discrete "
                                  f"label per label set (CEBRA takes one), got {discrete}.")
            if spec.get("hybrid") and len(discrete) == len(label_sets[name]):
                raise ConfigError(f"{where}.hybrid': hybrid training needs continuous "
                                  f"labels, but label set {name!r} has none.")
        if spec.get("hybrid") and not spec.get("label_sets"):
            raise ConfigError(f"{where}.hybrid': hybrid training needs label_sets.")
    for model, names in config.get("multi_session", {}).items():
        where = f"config: field 'multi_session.{model}'"
        if model not in config["models"]:
            raise ConfigError(f"{where}: unknown model {model!r}; models are "
                              f"{sorted(config['models'])}.")
        if config["models"][model].get("hybrid"):
            raise ConfigError(f"{where}: hybrid models cannot be trained multi-session.")
        for name in names:
            if name not in label_sets:
                raise ConfigError(f"{where}: unknown label set {name!r}; label_sets are "
                                  f"{sorted(label_sets)}.")
            kinds = {labels[label]["type"] for label in label_sets[name]}
            discrete = [label for label in label_sets[name]
                        if labels[label]["type"] == "discrete"]
            if len(kinds) > 1 or len(discrete) > 1:
                raise ConfigError(f"{where}: label set {name!r} mixes label types or has "
                                  "several discrete labels; multi-session training takes "
                                  "continuous labels only or a single discrete label.")
    for key in ("align_label",):
        value = config.get("consistency", {}).get(key)
        if value is not None and value not in labels:
            raise ConfigError(f"config: field 'consistency.{key}': unknown label {value!r}; "
                              f"labels are {sorted(labels)}.")
    targets = config.get("decoding", {}).get("targets")
    for target in targets or []:
        if target not in labels:
            raise ConfigError(f"config: field 'decoding.targets': unknown label {target!r}; "
                              f"labels are {sorted(labels)}.")
    _check_attainable_p(config.get("hypotheses", {}))
    for name, spec in labels.items():
        if spec["type"] == "discrete" and spec.get("normalize", "none") != "none":
            raise ConfigError(f"config: field 'labels.{name}.normalize': a discrete label's "
                              "classes are not rescaled; use normalize: none (or leave it "
                              "out).")
    trial_key = config.get("split", {}).get("trial_key")
    if trial_key in labels:
        raise ConfigError(f"config: field 'split.trial_key': {trial_key!r} is also a label "
                          "name; pick another label name.")
    check_recording(config)


# Label fields that only mean something when ingest aligns recordings (time_base set);
# fields with schema defaults are not listed (they are always present).
_RECORDING_LABEL_FIELDS = ("interpolation", "period", "max_gap", "rate", "time", "column")


def check_recording(config: Mapping[str, Any]) -> None:
    """Cross-field checks of the recording sections (time_base, neural, trials, labels).

    Raises
    ------
    ConfigError naming the field: a time base with neither bin_size nor stream, or
    naming an unknown stream; neural/trials sections or recording-only label fields
    without a time_base; circular interpolation without a period; DeepLabCut labels
    without a frame rate.
    """
    time_base = config.get("time_base")
    labels = config["labels"]
    if time_base is None:
        neural = config.get("neural") or {}
        # The schema fills starting_time and preprocess in; only a chosen field counts.
        chosen = [k for k, v in neural.items() if k != "starting_time" and v not in ([], {})]
        for section, used in (("neural", chosen), ("trials", config.get("trials"))):
            if used:
                raise ConfigError(f"config: field '{section}' only applies to recordings "
                                  "aligned at ingest; add a time_base section (bin_size or "
                                  "stream).")
        for name, spec in labels.items():
            extra = [f for f in _RECORDING_LABEL_FIELDS if f in spec]
            extra += ["preprocess"] if spec.get("preprocess") else []
            if extra or spec.get("source", "auto") != "auto":
                raise ConfigError(f"config: field 'labels.{name}': "
                                  f"{extra or ['source']} only apply to recordings aligned "
                                  "at ingest; add a time_base section (bin_size or stream).")
        return
    if not time_base.get("bin_size") and not time_base.get("stream"):
        raise ConfigError("config: field 'time_base': give bin_size (seconds) or stream (the "
                          "stream whose samples are the time base).")
    if time_base.get("bin_size") and time_base.get("stream"):
        raise ConfigError("config: field 'time_base': give bin_size or stream, not both.")
    stream = time_base.get("stream")
    if stream and stream != "neural" and stream not in labels:
        raise ConfigError(f"config: field 'time_base.stream': unknown stream {stream!r}; use "
                          f"'neural' or a label ({sorted(labels)}).")
    for name, spec in labels.items():
        where = f"config: field 'labels.{name}"
        if spec.get("interpolation") == "circular" and not spec.get("period"):
            raise ConfigError(f"{where}.period': circular interpolation needs the period "
                              "(360 for degrees, 6.283185307179586 for radians).")
        if spec.get("source") == "deeplabcut" and not spec.get("rate"):
            raise ConfigError(f"{where}.rate': DeepLabCut pose needs the camera's frame rate "
                              "(Hz).")


def check_model_architectures(config: Mapping[str, Any]) -> None:
    """Check every ``model_architecture`` against the model registry (imports torch)."""
    from cebra_pipe import CEBRA

    options = CEBRA.supported_model_architectures()
    for model, spec in config["models"].items():
        name = spec.get("model_architecture")
        if name not in options:
            import difflib

            close = difflib.get_close_matches(str(name), options, n=3, cutoff=0.5)
            hint = f" Did you mean {close}?" if close else ""
            raise ConfigError(f"config: field 'models.{model}.model_architecture': unknown "
                              f"model {name!r}.{hint} Available: {sorted(options)}.")


def align_label(config: Mapping[str, Any]) -> str | None:
    """The label sessions are aligned on for between-session consistency (or None)."""
    name = config.get("consistency", {}).get("align_label")
    if name is not None:
        return name
    for label, spec in config["labels"].items():
        if spec["type"] == "continuous":
            return label
    return None


def decoding_targets(config: Mapping[str, Any]) -> list[str]:
    """Labels decoded from every embedding."""
    targets = config.get("decoding", {}).get("targets")
    return list(config["labels"]) if targets is None else list(targets)


def single_variants(config: Mapping[str, Any]) -> list[Variant]:
    """Every single-session configuration: models x their label sets (+ ``controls.count``
    training nulls each). ``config`` is schema-validated: the schema states the defaults."""
    controls = config["controls"]
    count = int(controls["count"]) if controls["shuffle"] else 0
    variants: list[Variant] = []
    for model, spec in config["models"].items():
        names = spec.get("label_sets") or []
        if not names:
            variants.append(Variant(model, NO_LABELS))
        for name in names:
            variants.append(Variant(model, name))
            variants += [Variant(model, shuffled_labels(name, k)) for k in range(count)]
    return variants


def multi_variants(config: Mapping[str, Any]) -> list[Variant]:
    """Every multi-session configuration (no shuffled controls)."""
    return [Variant(model, name) for model, names in config.get("multi_session", {}).items()
            for name in names]


def model_params(config: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The estimator parameters of ``model`` (what a training job depends on)."""
    spec = dict(config["models"][model])
    keys = ("model_architecture", "conditional", "time_offsets", "batch_size",
            "max_iterations", "output_dimension", "num_hidden_units", "learning_rate",
            "temperature", "delta", "hybrid", "jacobian_regularization", "checkpoint_every")
    return {key: spec[key] for key in keys if key in spec}


def label_spec(config: Mapping[str, Any], variant: Variant) -> dict[str, Any]:
    """Label names a variant trains on, and whether (and how) they are shuffled; the
    labels' kinds travel in the session file, not here. ``config`` is schema-validated
    (the schema states the defaults of ``controls`` and ``hypotheses``)."""
    if variant.label_set is None:
        names: list[str] = []
    else:
        names = list(config["label_sets"][variant.label_set])
    controls, hypotheses = config["controls"], config["hypotheses"]
    spec = {"names": names, "shuffle": variant.shuffled, "shuffle_seed": controls["seed"]}
    if variant.shuffled:
        spec |= {"null_kind": controls["kind"], "null_index": variant.null_index,
                 "min_shift": hypotheses["min_shift"],
                 "within_trials": hypotheses["within_trials"]}
        if hypotheses.get("bin_size") is not None:  # only when set: no spurious reruns
            spec["bin_size"] = hypotheses["bin_size"]
    return spec


# -------------------------------------------------------------------------- sheet

def read_sheet(path: str | os.PathLike) -> Any:
    """Read the sessions sheet (TSV) as strings; a clear error when it is unreadable."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sessions sheet '{path}' does not exist (config field 'sessions').")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, comment="#", skip_blank_lines=True,
                            keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ConfigError(f"sessions sheet '{path}' is not a readable TSV file: {err}") from None
    if frame.empty:
        raise ConfigError(f"sessions sheet '{path}' has no rows.")
    if len(frame.columns) == 1 and any(sep in str(frame.columns[0]) for sep in ",;"):
        raise ConfigError(f"sessions sheet '{path}': the sheet must be tab-separated (TSV), "
                          f"but its header {str(frame.columns[0])!r} has no tabs; save it "
                          "with tabs between the columns.")
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        frame[column] = frame[column].map(lambda v: v.strip() if isinstance(v, str) else v)
    return frame


def check_columns(columns: Iterable[str], allowed: Iterable[str], required: Iterable[str],
                  where: str = "sessions sheet") -> None:
    """Unknown or missing column names of the sheet (empty cells hide them from the
    per-row schema check)."""
    columns, allowed = list(columns), list(allowed)
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        import difflib

        hints = {c: difflib.get_close_matches(c, allowed, n=1) for c in unknown}
        detail = ", ".join(f"'{c}'" + (f" (did you mean '{h[0]}'?)" if h else "")
                           for c, h in hints.items())
        raise ConfigError(f"{where}: unknown column(s) {detail}; allowed columns: {allowed}.")
    missing = [c for c in required if c not in columns]
    if missing:
        raise ConfigError(f"{where}: missing required column(s) {missing}.")


def parse_synthetic(source: str) -> tuple[str, dict[str, Any]]:
    """``"synthetic:name?animal=rat1&seed=0"`` -> ``("name", {"animal": "rat1", "seed": 0})``."""
    if not source.startswith(SYNTHETIC_PREFIX):
        raise ConfigError(f"{source!r} is not a synthetic source.")
    parts = urlsplit(source[len(SYNTHETIC_PREFIX):])
    name = parts.path
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name or ""):
        raise ConfigError(f"synthetic source {source!r}: bad dataset name {name!r}.")
    params: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"synthetic source {source!r}: bad parameter name {key!r}.")
        params[key] = _parse_scalar(value)
    return name, params


def _parse_scalar(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_label_map(text: str | None, labels: Iterable[str], where: str) -> dict[str, str]:
    """A sheet cell ``"name=value;name2=value2"`` (label name -> key or unit) as a dict.

    Empty cells give ``{}``. ``where`` names the row and column in errors.

    Raises
    ------
    ConfigError for a malformed entry, an unknown label name or a label given twice.
    """
    if text is None or not str(text).strip():
        return {}
    labels = list(labels)
    out: dict[str, str] = {}
    for entry in str(text).split(";"):
        name, sep, value = (part.strip() for part in entry.partition("="))
        if not entry.strip():
            continue
        if not sep or not name or not value:
            raise ConfigError(f"{where}: entry {entry.strip()!r} is not 'label=value' (write "
                              "e.g. 'position=pos_xy;direction=dir', entries separated by "
                              "';').")
        if name not in labels:
            raise ConfigError(f"{where}: unknown label {name!r}; the config's labels are "
                              f"{sorted(labels)}.")
        if name in out:
            raise ConfigError(f"{where}: label {name!r} is given twice.")
        out[name] = value
    return out


def label_units(config: Mapping[str, Any], rows: Iterable[Mapping[str, Any]] = ()
                ) -> dict[str, str]:
    """The unit shown for each label's values: the normalised unit when the config
    normalises it, else the rows' ``label_units`` (joined with ' / ' where the rows
    differ) or the config's ``unit``."""
    rows = list(rows)
    out = {}
    for name, spec in config["labels"].items():
        method = spec.get("normalize", "none")
        if method != "none":
            out[name] = NORMALIZE_UNITS[method]
            continue
        found = [parse_label_map(row.get("label_units"), config["labels"], "label_units")
                 .get(name, spec["unit"]) for row in rows] or [spec["unit"]]
        out[name] = " / ".join(dict.fromkeys(found))
    return out


def _check_shared_units(rows: list[dict[str, Any]], config: Mapping[str, Any],
                        where: str) -> None:
    """Labels compared between sessions (the consistency align label, multi-session
    label sets) must be in one unit unless they are normalised."""
    labels = config["labels"]
    shared = {align_label(config)} if len(rows) > 1 else set()
    for names in config.get("multi_session", {}).values():
        shared |= {label for name in names for label in config["label_sets"][name]}
    for name in sorted(n for n in shared if n is not None):
        if labels[name]["type"] != "continuous" or labels[name].get("normalize",
                                                                   "none") != "none":
            continue
        by_unit: dict[str, list[str]] = {}
        for row in rows:
            unit = parse_label_map(row.get("label_units"), labels, "label_units").get(
                name, labels[name]["unit"])
            by_unit.setdefault(unit, []).append(f"{row['animal']}/{row['session']}")
        if len(by_unit) > 1:
            detail = "; ".join(f"{unit}: {', '.join(ids)}" for unit, ids in by_unit.items())
            raise ConfigError(f"{where}: column 'label_units': label {name!r} is compared "
                              f"between sessions (consistency or multi-session models) but "
                              f"its unit differs ({detail}). Set labels.{name}.normalize: "
                              "range (or zscore) in the config to rescale each session at "
                              "ingest, or convert the sessions to one unit.")


def check_sheet(rows: Iterable[Mapping[str, Any]], config: Mapping[str, Any],
                where: str = "sessions sheet") -> list[dict[str, Any]]:
    """Check schema-validated sheet rows; returns them as plain dicts.

    Raises
    ------
    ConfigError naming the row and field: a duplicate (animal, session), an animal
    named like another report (``overview``), a data file that does not exist, a malformed synthetic source, or a session group too small
    for the configured multi-session models.
    """
    out: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        row = {k: v for k, v in dict(row).items() if isinstance(v, str)}  # drop empty (NaN)
        line = f"{where}, row {i + 1} ({row.get('animal')}/{row.get('session')})"
        key = (row["animal"], row["session"])
        if key in seen:
            raise ConfigError(f"{line}: duplicate session id '{key[0]}/{key[1]}' (also row "
                              f"{seen[key] + 1}); each animal/session pair must be unique.")
        seen[key] = i
        if row["animal"].lower() in RESERVED_ANIMAL_NAMES:
            raise ConfigError(f"{line}: field 'animal': {row['animal']!r} is reserved (its "
                              f"report page would replace report/{row['animal']}.html of "
                              f"the analysis; reserved: {sorted(RESERVED_ANIMAL_NAMES)}); "
                              "rename the animal.")
        for column in ("label_keys", "label_units"):
            parse_label_map(row.get(column), config["labels"], f"{line}: column '{column}'")
        for field in ("neural_file", "label_file", "trials_file"):
            value = row.get(field)
            if value is None:
                continue
            if value.startswith(SYNTHETIC_PREFIX):
                if field != "neural_file":
                    raise ConfigError(f"{line}: field '{field}': a synthetic source brings "
                                      f"its own labels; leave {field} empty.")
                try:
                    parse_synthetic(value)
                except ConfigError as err:
                    raise ConfigError(f"{line}: field '{field}': {err}") from None
            elif not Path(value).is_file():
                raise ConfigError(f"{line}: field '{field}': file '{value}' does not exist "
                                  f"(paths are relative to {Path.cwd().name!r}, the "
                                  "working directory).")
        out.append(row)
    groups: dict[str, int] = {}
    for row in out:
        groups[row.get("group", "cohort")] = groups.get(row.get("group", "cohort"), 0) + 1
    if config.get("multi_session"):
        small = sorted(g for g, n in groups.items() if n < 2)
        if small:
            raise ConfigError(f"{where}: field 'group': multi_session models need at least "
                              f"2 sessions per group, but group(s) {small} have 1; set "
                              "multi_session: {} or add sessions.")
    _check_shared_units(out, config, where)
    return out
