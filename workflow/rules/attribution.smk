# 10. attribution: which neurons drive each model's embedding, one job per session (all
#     its single-session models, label sets and seeds, and its own encoder of the
#     multi-session models of its groups): maps (neurons x embedding dimensions), ranked
#     neurons per model and top-k overlaps for the report.


rule attribution_session:
    conda:
        CONDA_ENV
    input:
        session=LAYOUT.session_file("{animal}", "{session}"),
        split=LAYOUT.split_file("{animal}", "{session}"),
        models=lambda w: attribution_model_files(w.animal, w.session),
    output:
        maps=LAYOUT.attribution_file("{animal}", "{session}"),
        ranks=report(
            LAYOUT.attribution_file("{animal}", "{session}", "tsv"),
            caption="../report/attribution.rst",
            category="Attribution maps",
            labels={"animal": "{animal}", "session": "{session}"},
        ),
        summary=LAYOUT.attribution_file("{animal}", "{session}", "json"),
        provenance=LAYOUT.attribution_file("{animal}", "{session}", "provenance.json"),
    params:
        dir=lambda w: LAYOUT.single_dir(w.animal, w.session),
        variants=json_param(attribution_variants()),
        multi_dir=LAYOUT.multi_dir(""),
        multi_variants=lambda w: json_arg(attribution_multi_variants(w.animal, w.session)),
        seeds=",".join(map(str, SEEDS)),
        method=config["attribution"]["method"],
        top_k=config["attribution"]["top_k"],
        num_samples=config["attribution"]["num_samples"],
        sample_seed=config["attribution"]["seed"],
        matched=str(config["attribution"]["matched_units"]).lower(),
        device=config["device"],
    log:
        LAYOUT.log_file("attribution_session", "{animal}", "{session}"),
    benchmark:
        LAYOUT.benchmark_file("attribution_session", "{animal}", "{session}")
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "python -m cebra_pipe attribution --session {input.session:q} --split {input.split:q}"
        " --dir {params.dir:q} --variants {params.variants:q} --seeds {params.seeds}"
        " --multi-dir {params.multi_dir:q} --multi-variants {params.multi_variants:q}"
        " --method {params.method} --top-k {params.top_k} --num-samples {params.num_samples}"
        " --sample-seed {params.sample_seed} --matched-units {params.matched}"
        " --device {params.device:q} --threads {threads} --maps {output.maps:q}"
        " --ranks {output.ranks:q} --summary {output.summary:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"
