# 5. consistency: between seeds (runs) per session and configuration (chained onto
#    that configuration's decode job, workflow/rules/decoding.smk), and between
#    sessions (datasets, aligned on a label) per group for single- and multi-session
#    models. Shuffled controls are left out.


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
