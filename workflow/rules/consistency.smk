# 5. consistency: between seeds (runs) per session and configuration, and between
#    sessions (datasets, aligned on a label) per group for single- and multi-session
#    models. Shuffled controls are left out.


rule consistency_runs:
    conda:
        CONDA_ENV
    input:
        embeddings=lambda w: single_outputs(
            w.animal, w.session, w.model, w.labels, f"embedding_{config['consistency']['split']}.npy"
        ),
    output:
        table=LAYOUT.consistency_runs_file("{animal}", "{session}", "{model}", "{labels}"),
        figure=report(
            LAYOUT.consistency_runs_file("{animal}", "{session}", "{model}", "{labels}", "png"),
            caption="../report/consistency_runs.rst",
            category="Consistency",
            subcategory="Between seeds",
            labels={"animal": "{animal}", "session": "{session}", "model": "{model}",
                    "labels": "{labels}"},
        ),
        provenance=LAYOUT.consistency_runs_file("{animal}", "{session}", "{model}", "{labels}", "provenance.json"),
    params:
        seeds=",".join(map(str, SEEDS)),
        title=lambda w: f"{w.animal}/{w.session} {w.model}/{w.labels}: between seeds",
    log:
        LAYOUT.log_file("consistency_runs", "{animal}", "{session}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("consistency_runs", "{animal}", "{session}", "{model}", "{labels}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "python -m cebra_pipe consistency-runs --embeddings {input.embeddings:q}"
        " --seeds {params.seeds} --title {params.title:q} --out {output.table:q}"
        " --figure {output.figure:q} --provenance {output.provenance:q} > {log:q} 2>&1"


rule consistency_datasets:
    conda:
        CONDA_ENV
    input:
        unpack(consistency_datasets_inputs),
    output:
        table=LAYOUT.consistency_datasets_file("{kind}", "{group}", "{model}", "{labels}"),
        figure=report(
            LAYOUT.consistency_datasets_file("{kind}", "{group}", "{model}", "{labels}", "png"),
            caption="../report/consistency_datasets.rst",
            category="Consistency",
            subcategory="Between sessions",
            labels={"kind": "{kind}-session", "group": "{group}", "model": "{model}",
                    "labels": "{labels}"},
        ),
        provenance=LAYOUT.consistency_datasets_file("{kind}", "{group}", "{model}", "{labels}", "provenance.json"),
    params:
        seeds=",".join(map(str, SEEDS)),
        multi=lambda w: "--multi" if w.kind == "multi" else "",
        split=config["consistency"]["split"],
        align=ALIGN_LABEL or "",
        bins=config["consistency"]["num_bins"],
        title=lambda w: f"{w.kind}-session {w.model}/{w.labels}: between sessions",
    log:
        LAYOUT.log_file("consistency_datasets", "{kind}", "{group}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("consistency_datasets", "{kind}", "{group}", "{model}", "{labels}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "python -m cebra_pipe consistency-datasets {params.multi} --sessions {input.sessions:q}"
        " --splits {input.splits:q} --embeddings {input.embeddings:q} --seeds {params.seeds}"
        " --split {params.split} --align-label {params.align:q} --num-bins {params.bins}"
        " --title {params.title:q} --out {output.table:q} --figure {output.figure:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"
