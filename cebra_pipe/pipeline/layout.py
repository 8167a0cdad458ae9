"""Where every output of an analysis lives, and how trained configurations are named.

This module is the one place that spells the results layout: the workflow
(``workflow/rules/*.smk``), the pipeline steps and the report notebooks ask it for
paths instead of writing ``results/...`` themselves. Each analysis (one config) writes
into its own folder, ``<results_dir>/<analysis>/``:

.. code-block:: text

    sessions/<animal>/<session>.npz            ingested session (+ .provenance.json)
    splits/<animal>/<session>.npz              train/valid split
    single/<animal>/<session>/<model>/<labels>/seed<k>/   single-session models
    multi/<group>/<model>/<labels>/seed<k>/    multi-session models
    cohorts/<cohort>/<animal>/<session>/       a session joined to a trained cohort model
    cohorts/<cohort>/<animal>/<session>/       a session joined to a cohort model
    checkpoints/{single,multi}/...             resumable training state (not outputs)
    decoding/{single,multi}/...tsv             decoding and goodness of fit
    controls/<animal>/<session>.tsv            real vs shuffled-label controls
    consistency/{runs,datasets}/...            consistency between seeds / sessions
    hypotheses/<animal>/<session>.{tsv,npz,png}
    attribution/<animal>/<session>.{npz,tsv,json}
    figures/<animal>/<session>/{loss,embeddings}.png
    tables/<name>.tsv                          cohort tables
    report/<animal>.html, report/overview.html the HTML reports a lab reads
    report/notebooks/                          executed report notebooks
    report/snakemake.html                      ``snakemake --report`` (see README)
    logs/<step>/..., benchmarks/<step>/...     one log and benchmark per job

``<labels>`` is ``none`` (CEBRA-Time), a label set's name, or a shuffled-label control
of one: ``<set>-shuffled`` (training null 0) or ``<set>-shuffled<k>`` (null k).

The analysis name is the config's ``analysis`` field, else derived from the config
file (:func:`analysis_name`); ``results_dir`` (default in the config schema) is the
folder holding all analyses.

>>> layout = Layout("results/rats")
>>> layout.session_file("achilles", "s1")
'results/rats/sessions/achilles/s1.npz'
>>> layout.seed_file(layout.single_dir("achilles", "s1", "behavior", "position"), 0, "model.pt")
'results/rats/single/achilles/s1/behavior/position/seed0/model.pt'
>>> shuffled_labels("position", 2), split_shuffled("position-shuffled2")
('position-shuffled2', ('position', 2))
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["Layout", "SHUFFLED_SUFFIX", "LABELS_WILDCARD", "REAL_LABELS_WILDCARD",
           "SHUFFLED_LABELS_WILDCARD", "NAME_PATTERN", "analysis_name",
           "analysis_dir", "shuffled_labels", "split_shuffled", "is_shuffled", "seed_dir",
           "OVERVIEW", "RESERVED_ANIMAL_NAMES"]

#: Suffix of a shuffled-label control's label-set name.
SHUFFLED_SUFFIX = "-shuffled"
_SHUFFLED = re.compile(re.escape(SHUFFLED_SUFFIX) + r"(\d*)$")
#: Names of animals, sessions, groups and analyses (path components and wildcards).
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*"
#: The ``{labels}`` wildcard: ``none``, a label set, or a shuffled control of one.
LABELS_WILDCARD = rf"none|[A-Za-z0-9][A-Za-z0-9_+]*({re.escape(SHUFFLED_SUFFIX)}[0-9]*)?"
#: The ``{labels}`` wildcard of real models only (``none`` or a label set) ...
REAL_LABELS_WILDCARD = r"none|[A-Za-z0-9][A-Za-z0-9_+]*"
#: ... and of shuffled controls only (rules that treat the two differently).
SHUFFLED_LABELS_WILDCARD = rf"[A-Za-z0-9][A-Za-z0-9_+]*{re.escape(SHUFFLED_SUFFIX)}[0-9]*"
#: Report name of the cohort overview (``report/overview.html``, beside the animal pages).
OVERVIEW = "overview"
#: Animal names whose page would overwrite another report file of the analysis.
RESERVED_ANIMAL_NAMES = frozenset({OVERVIEW, "snakemake"})
# Conventional config file names that say nothing about the analysis: their folder does.
_GENERIC_STEMS = {"config"}


# ------------------------------------------------------------------ naming
def shuffled_labels(label_set: str, null: int = 0) -> str:
    """The ``<labels>`` name of training null ``null`` of ``label_set``'s control."""
    return label_set + SHUFFLED_SUFFIX + (str(null) if null else "")


def split_shuffled(labels: str) -> tuple[str, int | None]:
    """``(label set, null index)`` of a ``<labels>`` name; the index is None when the
    name is not a shuffled control."""
    found = _SHUFFLED.search(labels)
    if found is None:
        return labels, None
    return labels[:found.start()], int(found.group(1) or 0)


def is_shuffled(labels: str) -> bool:
    """Whether a ``<labels>`` name is a shuffled-label control."""
    return split_shuffled(labels)[1] is not None


def seed_dir(folder: str | os.PathLike, seed: int) -> Path:
    """The folder of one seed's outputs (``model.pt``, embeddings, ``loss.tsv``,
    ``provenance.json``) inside a trained configuration's folder."""
    return Path(folder) / f"seed{int(seed)}"


# ---------------------------------------------------------------- analyses
def analysis_name(config: Mapping[str, Any], configfile: str | os.PathLike | None) -> str:
    """The analysis' name: the config's ``analysis`` field, else the config file's stem
    (``my/lab_a.yaml`` -> ``lab_a``), or its folder's name when the file is called
    ``config.yaml`` (``config/rats/config.yaml`` -> ``rats``, ``config/config.yaml`` ->
    ``config``).

    Raises
    ------
    ValueError
        No ``analysis`` field and no config file to name the analysis after, or a
        name that is not a plain folder name.
    """
    name = config.get("analysis")
    where = "config field 'analysis'"
    if name is None:
        if configfile is None:
            raise ValueError("config field 'analysis' is needed when the config does not "
                             "come from a file: it names the analysis' output folder.")
        path = PurePosixPath(os.fspath(configfile).replace(os.sep, "/"))
        name = path.stem if path.stem not in _GENERIC_STEMS else PurePosixPath(
            os.path.abspath(os.fspath(configfile))).parent.name
        where = f"the analysis name derived from config file '{configfile}'"
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"{where} is {name!r}: an analysis name is a folder name of "
                         "letters, digits, '_' and '-' (set the config field 'analysis').")
    return name


def analysis_dir(config: Mapping[str, Any], configfile: str | os.PathLike | None) -> str:
    """``<results_dir>/<analysis>``: the folder of every output of one analysis.

    ``config`` is schema-validated (``results_dir`` filled in by the schema's default).
    """
    return str(PurePosixPath(config["results_dir"]) / analysis_name(config, configfile))


# ------------------------------------------------------------------ layout
class Layout:
    """Paths of one analysis' outputs, relative to the working directory.

    Arguments are names or Snakemake wildcard patterns (``"{animal}"``), so rules and
    steps spell each path through the same method. Every method returns a POSIX path
    string (Snakemake compares paths as strings).

    Parameters
    ----------
    root : the analysis folder (:func:`analysis_dir`)
    """

    def __init__(self, root: str | os.PathLike):
        self.root = str(PurePosixPath(os.fspath(root)))

    def __repr__(self) -> str:
        return f"Layout({self.root!r})"

    def _path(self, *parts: Any) -> str:
        return str(PurePosixPath(self.root, *map(str, parts)))

    # data
    def session_file(self, animal: str, session: str, ext: str = "npz") -> str:
        """Ingested session (``ext="provenance.json"`` for its provenance)."""
        return self._path("sessions", animal, f"{session}.{ext}")

    def split_file(self, animal: str, session: str, ext: str = "npz") -> str:
        return self._path("splits", animal, f"{session}.{ext}")

    # models
    def single_dir(self, animal: str, session: str, model: str = "", labels: str = "") -> str:
        """A single-session configuration's folder (the session's folder of all of
        them when ``model`` and ``labels`` are left out)."""
        return self._path("single", animal, session, *[p for p in (model, labels) if p])

    def multi_dir(self, group: str, model: str = "", labels: str = "") -> str:
        """A multi-session configuration's folder (all groups' when ``group`` is '')."""
        return self._path("multi", *[p for p in (group, model, labels) if p])

    def joined_dir(self, cohort: str, animal: str, session: str, name: str = "") -> str:
        """A session embedded into the cohort model ``cohort`` (config ``cohort_models``):
        the folder of the grown model, the session's embeddings and its consistency with
        the cohort, or its file ``name`` (``model.pt``, ``consistency.tsv``, ...)."""
        return self._path("cohorts", cohort, animal, session, *[p for p in (name,) if p])

    def checkpoint_dir(self, kind: str, *parts: str) -> str:
        """Resumable training state of a ``single`` or ``multi`` configuration."""
        return self._path("checkpoints", kind, *parts)

    @staticmethod
    def seed_file(folder: str, seed: int, name: str) -> str:
        """``<folder>/seed<k>/<name>``: one seed's ``model.pt``, embeddings, loss..."""
        return (seed_dir(folder, seed) / name).as_posix()

    # evaluation
    def decode_file(self, animal: str, session: str, model: str, labels: str,
                    ext: str = "tsv") -> str:
        return self._path("decoding", "single", animal, session, model, f"{labels}.{ext}")

    def multi_decode_file(self, group: str, model: str, labels: str, ext: str = "tsv") -> str:
        return self._path("decoding", "multi", group, model, f"{labels}.{ext}")

    def controls_file(self, animal: str, session: str, ext: str = "tsv") -> str:
        return self._path("controls", animal, f"{session}.{ext}")

    def consistency_runs_file(self, animal: str, session: str, model: str, labels: str,
                              ext: str = "tsv") -> str:
        return self._path("consistency", "runs", animal, session, model, f"{labels}.{ext}")

    def consistency_datasets_file(self, kind: str, group: str, model: str, labels: str,
                                  ext: str = "tsv") -> str:
        return self._path("consistency", "datasets", kind, group, model, f"{labels}.{ext}")

    def hypotheses_file(self, animal: str, session: str, ext: str = "tsv") -> str:
        return self._path("hypotheses", animal, f"{session}.{ext}")

    def loao_file(self, group: str, model: str, labels: str, ext: str = "tsv") -> str:
        """Leave-one-animal-out decoding of a group's multi-session model."""
        return self._path("hypotheses", "leave-one-animal-out", group, model, f"{labels}.{ext}")

    def attribution_file(self, animal: str, session: str, ext: str = "npz") -> str:
        return self._path("attribution", animal, f"{session}.{ext}")

    # report
    def figure_file(self, animal: str, session: str, name: str) -> str:
        """``loss.png``, ``embeddings.png`` or ``provenance.json`` of a session."""
        return self._path("figures", animal, session, name)

    def table_file(self, name: str, ext: str = "tsv") -> str:
        return self._path("tables", f"{name}.{ext}")

    def report_file(self, name: str) -> str:
        """An HTML report: ``<animal>.html`` or ``overview.html``."""
        return self._path("report", f"{name}.html")

    def report_notebook(self, name: str, ext: str = "ipynb") -> str:
        """The executed notebook of a report (``ext="provenance.json"``: its provenance)."""
        return self._path("report", "notebooks", f"{name}.{ext}")

    def snakemake_report(self) -> str:
        """Where ``snakemake --report`` writes Snakemake's own report of the analysis."""
        return self._path("report", "snakemake.html")

    # job records
    def log_file(self, step: str, *parts: str, ext: str = "log") -> str:
        """``logs/<step>/<parts...>.<ext>``: a job's log (its wildcards as parts)."""
        return self._path("logs", step, *parts[:-1], f"{parts[-1]}.{ext}")

    def benchmark_file(self, step: str, *parts: str) -> str:
        return self._path("benchmarks", step, *parts[:-1], f"{parts[-1]}.tsv")
