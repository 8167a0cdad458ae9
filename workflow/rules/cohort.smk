# 9. join_cohort: a session whose sheet row names a config cohort_models entry in its
#    `joins` column is embedded into that trained multi-session model without
#    retraining the cohort; its consistency with the cohort goes into the animal's
#    report (python -m cebra_pipe join-cohort, cebra_pipe/pipeline/cohort.py).

_JOINED = LAYOUT.joined_dir("{cohort}", "{animal}", "{session}")


rule join_cohort:
    conda:
        CONDA_ENV
    input:
        model=lambda w: _cohort_model(w)["model"],
        session=LAYOUT.session_file("{animal}", "{session}"),
        split=LAYOUT.split_file("{animal}", "{session}"),
    output:
        model=LAYOUT.joined_dir("{cohort}", "{animal}", "{session}", "model.pt"),
        embeddings=LAYOUT.joined_dir("{cohort}", "{animal}", "{session}", "embeddings.npz"),
        consistency=LAYOUT.joined_dir("{cohort}", "{animal}", "{session}", "consistency.tsv"),
        provenance=LAYOUT.joined_dir("{cohort}", "{animal}", "{session}", "provenance.json"),
    wildcard_constraints:
        cohort=r"[A-Za-z0-9][A-Za-z0-9_]*",
    params:
        labels=lambda w: json_arg({"names": list(config["label_sets"][_cohort_model(w)["label_set"]])}),
        align=ALIGN_LABEL or "",
        num_bins=config["consistency"]["num_bins"],
        iterations=lambda w: _cohort_model(w)["max_adapt_iterations"],
        device=config["device"],
        outdir=_JOINED,
    log:
        LAYOUT.log_file("join_cohort", "{cohort}", "{animal}", "{session}"),
    benchmark:
        LAYOUT.benchmark_file("join_cohort", "{cohort}", "{animal}", "{session}")
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m cebra_pipe join-cohort --cohort-model {input.model:q}"
        " --cohort-name {wildcards.cohort:q} --session {input.session:q}"
        " --split {input.split:q} --labels {params.labels:q} --align-label {params.align:q}"
        " --num-bins {params.num_bins} --max-adapt-iterations {params.iterations}"
        " --device {params.device:q} --threads {threads} --outdir {params.outdir:q}"
        " > {log:q} 2>&1"
