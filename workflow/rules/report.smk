# 8. report: per-session figures, cohort tables, and papermill notebooks rendered to
#    HTML (one per animal and a cohort overview). Figures and tables are also
#    registered with report() for `snakemake --report report.html`.

rule figures:
    conda:
        CONDA_ENV
    input:
        session=LAYOUT.session_file("{animal}", "{session}"),
        split=LAYOUT.split_file("{animal}", "{session}"),
        loss=lambda w: [p for v in SINGLE
                        for p in single_outputs(w.animal, w.session, v.model, v.labels, "loss.tsv")],
        valid=lambda w: [LAYOUT.seed_file(LAYOUT.single_dir(w.animal, w.session, v.model, v.labels),
                                          SEEDS[0], "embedding_valid.npy") for v in SINGLE],
    output:
        loss=report(
            LAYOUT.figure_file("{animal}", "{session}", "loss.png"),
            caption="../report/loss.rst",
            category="Training",
            subcategory="Loss curves",
            labels={"animal": "{animal}", "session": "{session}", "figure": "loss"},
        ),
        embeddings=report(
            LAYOUT.figure_file("{animal}", "{session}", "embeddings.png"),
            caption="../report/embeddings.rst",
            category="Embeddings",
            subcategory="Valid split",
            labels={"animal": "{animal}", "session": "{session}", "figure": "embeddings"},
        ),
        provenance=LAYOUT.figure_file("{animal}", "{session}", "provenance.json"),
    params:
        dir=lambda w: LAYOUT.single_dir(w.animal, w.session),
        variants=json_arg([[v.model, v.labels] for v in SINGLE]),
        seeds=",".join(map(str, SEEDS)),
        units=lambda w: json_arg(label_units(w.animal, w.session)),
        max_points=config["report"]["max_points"],
    log:
        LAYOUT.log_file("figures", "{animal}", "{session}"),
    benchmark:
        LAYOUT.benchmark_file("figures", "{animal}", "{session}")
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
            LAYOUT.table_file("{table}"),
            caption="../report/tables.rst",
            category="Cohort tables",
            labels={"table": "{table}"},
        ),
        provenance=LAYOUT.table_file("{table}", "provenance.json"),
    wildcard_constraints:
        table="sessions|decoding|controls|consistency",
    log:
        LAYOUT.log_file("table", "{table}"),
    benchmark:
        LAYOUT.benchmark_file("table", "{table}")
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
            LAYOUT.report_file("{animal}"),
            caption="../report/animal_report.rst",
            category="Notebook reports",
            labels={"report": "{animal}"},
        ),
        notebook=LAYOUT.report_notebook("{animal}"),
        provenance=LAYOUT.report_notebook("{animal}", "provenance.json"),
    params:
        parameters=lambda w: json_arg({
            "animal": w.animal,
            "sessions": sessions_of(w.animal),
            "variants": [[v.model, v.labels] for v in SINGLE],
            "seeds": SEEDS,
            "results": LAYOUT.root,
            "align_label": ALIGN_LABEL or "none",
            "runs_consistency": len(SEEDS) >= 2,
            "title": config["report"]["title"],
            "units": label_units(w.animal),
            "max_points": config["report"]["max_points"],
            "joins": joined_cohorts(w.animal),
        }),
        page_title=lambda w: f"{config['report']['title']}: animal {w.animal}",
        failed=LAYOUT.log_file("report", "{animal}", ext="failed.ipynb"),
        # A new animal page makes the overview out of date until it is made again.
        overview=OVERVIEW_FILES,
    log:
        LAYOUT.log_file("report", "{animal}"),
    benchmark:
        LAYOUT.benchmark_file("report", "{animal}")
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "python -m cebra_pipe report --notebook {input.notebook:q}"
        " --parameters {params.parameters:q} --out-html {output.html:q}"
        " --out-notebook {output.notebook:q} --failed-notebook {params.failed:q}"
        " --page-title {params.page_title:q} --invalidates {params.overview:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


rule report_overview:
    conda:
        CONDA_ENV
    input:
        notebook=f"{NOTEBOOKS}/overview.ipynb",
        tables=cohort_tables(),
        consistency=datasets_consistency_targets("png"),
        animals=animal_reports(),
    output:
        html=report(
            LAYOUT.report_file(cp_layout.OVERVIEW),
            caption="../report/overview_report.rst",
            category="Notebook reports",
            labels={"report": "cohort overview"},
        ),
        notebook=LAYOUT.report_notebook(cp_layout.OVERVIEW),
        provenance=LAYOUT.report_notebook(cp_layout.OVERVIEW, "provenance.json"),
    params:
        parameters=json_param({
            "animals": ANIMALS,
            "sessions": [list(k) for k in ROW],
            "variants": [[v.model, v.labels] for v in SINGLE],
            "multi_variants": [[v.model, v.labels] for v in MULTI],
            "groups": {g: [list(m) for m in members] for g, members in GROUPS.items()},
            "seeds": SEEDS,
            "results": LAYOUT.root,
            "title": config["report"]["title"],
            "units": label_units(),
            "iterations": {v.model: config["models"][v.model]["max_iterations"]
                           for v in SINGLE + MULTI},
            "align_label": ALIGN_LABEL or "none",
            "max_points": config["report"]["max_points"],
        }),
        page_title=lambda w: f"{config['report']['title']}: cohort overview",
        failed=LAYOUT.log_file("report", cp_layout.OVERVIEW, ext="failed.ipynb"),
    log:
        LAYOUT.log_file("report", cp_layout.OVERVIEW),
    benchmark:
        LAYOUT.benchmark_file("report", cp_layout.OVERVIEW)
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "python -m cebra_pipe report --notebook {input.notebook:q}"
        " --parameters {params.parameters:q} --out-html {output.html:q}"
        " --out-notebook {output.notebook:q} --failed-notebook {params.failed:q}"
        " --page-title {params.page_title:q} --summarises {input.animals:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"
