"""Workflow entrypoints, one module per step, each runnable as ``python -m cebra_pipe <step>``.

Steps (in workflow order): ``ingest``, ``split``, ``train-single``, ``train-multi``,
``consistency-runs``, ``consistency-datasets``, ``decode``, ``controls``, ``hypotheses-session``,
``hypotheses-loao``, ``hypotheses``, ``attribution``, ``join-cohort``, ``figures``,
``aggregate``, ``report``. Each module has ``main(argv)`` (raises on bad input) and
``cli(argv)`` (prints one error line and returns an exit status).
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
