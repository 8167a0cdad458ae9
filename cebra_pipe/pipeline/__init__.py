"""Workflow entrypoints, one module per step, each runnable as ``python -m cebra_pipe <step>``.

Steps (in workflow order): ``ingest``, ``split``, ``train-single``, ``train-multi``,
``consistency-runs``, ``consistency-datasets``, ``decode``, ``controls``, ``hypotheses-session``,
``hypotheses-loao``, ``hypotheses``, ``attribution``, ``join-cohort``, ``figures``,
``aggregate``, ``report``. Each module has ``main(argv)`` (raises on bad input) and
``cli(argv)`` (prints one error line and returns an exit status).

What belongs here: reading the files a rule names, calling the library (estimator,
metrics, decoders, hypothesis tests), writing outputs atomically with provenance.
No science that a user could not call from the library, and no Snakemake. Helpers
that several steps need live in :mod:`.common` (sessions, splits, files,
provenance) and :mod:`.arguments` (``--seeds``, ``--model``, ``--labels``), not in
one step's module.

Extending: a new step is a module with ``main``/``cli`` named in ``STEPS`` below, a
rule in ``workflow/rules/*.smk`` that calls ``python -m cebra_pipe <step>`` with
``log:`` and ``benchmark:``, and its config fields in
``workflow/schemas/config.schema.yaml`` (where their defaults are stated).
"""

from __future__ import annotations

STEPS: dict[str, str] = {
    "ingest": "cebra_pipe.pipeline.ingest",
    "split": "cebra_pipe.pipeline.split",
    "train-single": "cebra_pipe.pipeline.train",
    "train-multi": "cebra_pipe.pipeline.train",
    "consistency-runs": "cebra_pipe.pipeline.consistency",
    "consistency-datasets": "cebra_pipe.pipeline.consistency",
    "decode": "cebra_pipe.pipeline.decode",
    "controls": "cebra_pipe.pipeline.controls",
    "attribution": "cebra_pipe.pipeline.attribution",
    "join-cohort": "cebra_pipe.pipeline.cohort",
    "hypotheses-session": "cebra_pipe.pipeline.hypotheses",
    "hypotheses": "cebra_pipe.pipeline.hypotheses",
    "hypotheses-loao": "cebra_pipe.pipeline.hypotheses",
    "figures": "cebra_pipe.pipeline.figures",
    "aggregate": "cebra_pipe.pipeline.aggregate",
    "report": "cebra_pipe.pipeline.report",
}

__all__ = ["STEPS"]
