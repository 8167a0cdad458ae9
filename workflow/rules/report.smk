# 8. report: per-session figures, cohort tables, and papermill notebooks rendered to
#    HTML (one per animal and a cohort overview). Figures and tables are also
#    registered with report() for `snakemake --report report.html`.

rule figures:
    conda:
        CONDA_ENV
    input:
        session=f"{RESULTS}/sessions/{{animal}}/{{session}}.npz",
        split=f"{RESULTS}/splits/{{animal}}/{{session}}.npz",
        loss=lambda w: [p for v in SINGLE
                        for p in single_outputs(w.animal, w.session, v.model, v.labels, "loss.tsv")],
        valid=lambda w: [f"{single_dir(w.animal, w.session, v.model, v.labels)}/seed{SEEDS[0]}/embedding_valid.npy"
                         for v in SINGLE],
    output:
        loss=report(
            f"{RESULTS}/figures/{{animal}}/{{session}}/loss.png",
            caption="../report/loss.rst",
            category="Training",
            subcategory="Loss curves",
            labels={"animal": "{animal}", "session": "{session}", "figure": "loss"},
        ),
        embeddings=report(
            f"{RESULTS}/figures/{{animal}}/{{session}}/embeddings.png",
            caption="../report/embeddings.rst",
            category="Embeddings",
            subcategory="Valid split",
            labels={"animal": "{animal}", "session": "{session}", "figure": "embeddings"},
        ),
        provenance=f"{RESULTS}/figures/{{animal}}/{{session}}/provenance.json",
    params:
        dir=lambda w: f"{RESULTS}/single/{w.animal}/{w.session}",
        variants=json_arg([[v.model, v.labels] for v in SINGLE]),
        seeds=",".join(map(str, SEEDS)),
        units=lambda w: json_arg(label_units(w.animal, w.session)),
        max_points=config["report"]["max_points"],
    log:
        f"{RESULTS}/logs/figures/{{animal}}/{{session}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{animal}}/{{session}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m cebra_pipe figures --dir {params.dir:q} --variants {params.variants:q}"
        " --seeds {params.seeds} --session {input.session:q} --split {input.split:q}"
        " --units {params.units:q} --max-points {params.max_points}"
        " --loss-figure {output.loss:q} --embedding-figure {output.embeddings:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


rule table:
    conda:
        CONDA_ENV
    input:
        unpack(table_inputs),
    output:
        table=report(
            f"{RESULTS}/tables/{{table}}.tsv",
            caption="../report/tables.rst",
            category="Cohort tables",
            labels={"table": "{table}"},
        ),
        provenance=f"{RESULTS}/tables/{{table}}.provenance.json",
    wildcard_constraints:
        table="sessions|decoding|controls|consistency",
    log:
        f"{RESULTS}/logs/table/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/table/{{table}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m cebra_pipe aggregate --kind {wildcards.table} --inputs {input.inputs:q}"
        " --splits {input.splits:q} --out {output.table:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


rule report_animal:
    conda:
        CONDA_ENV
    input:
        notebook=f"{NOTEBOOKS}/animal.ipynb",
        data=lambda w: animal_report_inputs(w.animal),
    output:
        html=report(
            f"{RESULTS}/report/{{animal}}.html",
            caption="../report/animal_report.rst",
            category="Notebook reports",
            labels={"report": "{animal}"},
        ),
        notebook=f"{RESULTS}/report/notebooks/{{animal}}.ipynb",
        provenance=f"{RESULTS}/report/notebooks/{{animal}}.provenance.json",
    params:
        parameters=lambda w: json_arg({
            "animal": w.animal,
            "sessions": sessions_of(w.animal),
            "variants": [[v.model, v.labels] for v in SINGLE],
            "seeds": SEEDS,
            "results": RESULTS,
            "align_label": ALIGN_LABEL or "none",
            "runs_consistency": len(SEEDS) >= 2,
            "title": config["report"]["title"],
            "units": label_units(w.animal),
            "max_points": config["report"]["max_points"],
        }),
        page_title=lambda w: f"{config['report']['title']}: animal {w.animal}",
        failed=f"{RESULTS}/logs/report/{{animal}}.failed.ipynb",
    log:
        f"{RESULTS}/logs/report/{{animal}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/{{animal}}.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "python -m cebra_pipe report --notebook {input.notebook:q}"
        " --parameters {params.parameters:q} --out-html {output.html:q}"
        " --out-notebook {output.notebook:q} --failed-notebook {params.failed:q}"
        " --page-title {params.page_title:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


rule report_overview:
    conda:
        CONDA_ENV
    input:
        notebook=f"{NOTEBOOKS}/overview.ipynb",
        tables=cohort_tables(),
        consistency=datasets_consistency_targets("png"),
    output:
        html=report(
            f"{RESULTS}/report/overview.html",
            caption="../report/overview_report.rst",
            category="Notebook reports",
            labels={"report": "cohort overview"},
        ),
        notebook=f"{RESULTS}/report/notebooks/overview.ipynb",
        provenance=f"{RESULTS}/report/notebooks/overview.provenance.json",
    params:
        parameters=json_param({
            "animals": ANIMALS,
            "sessions": [list(k) for k in ROW],
            "variants": [[v.model, v.labels] for v in SINGLE],
            "multi_variants": [[v.model, v.labels] for v in MULTI],
            "groups": {g: [list(m) for m in members] for g, members in GROUPS.items()},
            "seeds": SEEDS,
            "results": RESULTS,
            "title": config["report"]["title"],
            "units": label_units(),
            "iterations": {v.model: config["models"][v.model]["max_iterations"]
                           for v in SINGLE + MULTI},
            "align_label": ALIGN_LABEL or "none",
            "max_points": config["report"]["max_points"],
        }),
        page_title=lambda w: f"{config['report']['title']}: cohort overview",
        failed=f"{RESULTS}/logs/report/overview.failed.ipynb",
    log:
        f"{RESULTS}/logs/report/overview.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/overview.tsv"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "python -m cebra_pipe report --notebook {input.notebook:q}"
        " --parameters {params.parameters:q} --out-html {output.html:q}"
        " --out-notebook {output.notebook:q} --failed-notebook {params.failed:q}"
        " --page-title {params.page_title:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"
