# 9. hypotheses: evaluation nulls of every label set's single-session models, one job
#    per session (all models, label sets and seeds: the cluster gets few, larger
#    jobs), then the cohort tables: <analysis>/tables/hypotheses{,_cohort,_groups}.tsv.


rule hypotheses_session:
    conda:
        CONDA_ENV
    input:
        session=LAYOUT.session_file("{animal}", "{session}"),
        split=LAYOUT.split_file("{animal}", "{session}"),
        models=lambda w: hypothesis_model_files(w.animal, w.session),
    output:
        table=LAYOUT.hypotheses_file("{animal}", "{session}"),
        nulls=LAYOUT.hypotheses_file("{animal}", "{session}", "npz"),
        figure=report(
            LAYOUT.hypotheses_file("{animal}", "{session}", "png"),
            caption="../report/hypotheses.rst",
            category="Hypothesis tests",
            subcategory="Null distributions",
            labels={"animal": "{animal}", "session": "{session}"},
        ),
        provenance=LAYOUT.hypotheses_file("{animal}", "{session}", "provenance.json"),
    params:
        dir=lambda w: LAYOUT.single_dir(w.animal, w.session),
        variants=json_arg(hypothesis_variants()),
        seeds=",".join(map(str, SEEDS)),
        num_nulls=config["hypotheses"]["num_nulls"],
        kind=config["hypotheses"]["null_kind"],
        min_shift=str(config["hypotheses"]["min_shift"]),
        bin_size=(f" --bin-size {config['hypotheses']['bin_size']}"
                  if config["hypotheses"].get("bin_size") else ""),
        within_trials=str(config["hypotheses"]["within_trials"]).lower(),
        correction=config["hypotheses"]["correction"],
        alpha=config["hypotheses"]["alpha"],
        smoothing=config["hypotheses"]["baseline_smoothing"],
        null_seed=config["hypotheses"]["seed"],
        units=lambda w: json_arg(label_units(w.animal, w.session)),
        knn=config["decoding"]["knn_neighbors"],
        gof_batches=config["decoding"]["gof_batches"],
        device=config["device"],
    log:
        LAYOUT.log_file("hypotheses_session", "{animal}", "{session}"),
    benchmark:
        LAYOUT.benchmark_file("hypotheses_session", "{animal}", "{session}")
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "python -m cebra_pipe hypotheses-session --session {input.session:q}"
        " --split {input.split:q} --dir {params.dir:q} --variants {params.variants:q}"
        " --seeds {params.seeds} --num-nulls {params.num_nulls} --null-kind {params.kind}"
        " --min-shift {params.min_shift:q}{params.bin_size} --within-trials {params.within_trials}"
        " --correction {params.correction} --alpha {params.alpha}"
        " --smoothing {params.smoothing} --units {params.units:q}"
        " --null-seed {params.null_seed} --knn-neighbors {params.knn}"
        " --gof-batches {params.gof_batches} --device {params.device:q} --threads {threads}"
        " --out {output.table:q} --nulls {output.nulls:q} --figure {output.figure:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


rule hypotheses_loao:
    conda:
        CONDA_ENV
    input:
        sessions=group_files("session"),
        splits=group_files("split"),
    output:
        table=LAYOUT.loao_file("{group}", "{model}", "{labels}"),
        provenance=LAYOUT.loao_file("{group}", "{model}", "{labels}", "provenance.json"),
    params:
        model=lambda w: json_arg(cp_config.model_params(config, w.model)),
        names=lambda w: json_arg(list(config["label_sets"][w.labels])),
        seeds=",".join(map(str, SEEDS)),
        num_nulls=config["hypotheses"]["num_nulls"],
        kind=config["hypotheses"]["null_kind"],
        min_shift=str(config["hypotheses"]["min_shift"]),
        bin_size=(f" --bin-size {config['hypotheses']['bin_size']}"
                  if config["hypotheses"].get("bin_size") else ""),
        within_trials=str(config["hypotheses"]["within_trials"]).lower(),
        correction=config["hypotheses"]["correction"],
        alpha=config["hypotheses"]["alpha"],
        null_seed=config["hypotheses"]["seed"],
        units=json_param({name: spec["unit"] for name, spec in config["labels"].items()}),
        knn=config["decoding"]["knn_neighbors"],
        device=config["device"],
    log:
        LAYOUT.log_file("hypotheses_loao", "{group}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("hypotheses_loao", "{group}", "{model}", "{labels}")
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=lambda w: config["models"][w.model]["mem_mb"],
        # per animal left out: one multi-session training and one adaptation
        runtime=lambda w: 2 * len(GROUPS[w.group]) * config["models"][w.model]["runtime"],
    shell:
        "python -m cebra_pipe hypotheses-loao --sessions {input.sessions:q}"
        " --splits {input.splits:q} --model-name {wildcards.model} --label-set {wildcards.labels}"
        " --model {params.model:q} --names {params.names:q} --seeds {params.seeds}"
        " --num-nulls {params.num_nulls} --null-kind {params.kind}"
        " --min-shift {params.min_shift:q}{params.bin_size} --within-trials {params.within_trials}"
        " --correction {params.correction} --alpha {params.alpha} --units {params.units:q}"
        " --null-seed {params.null_seed} --knn-neighbors {params.knn} --device {params.device:q}"
        " --threads {threads} --out {output.table:q} --provenance {output.provenance:q}"
        " > {log:q} 2>&1"


rule hypotheses_cohort:
    conda:
        CONDA_ENV
    input:
        tables=[LAYOUT.hypotheses_file(a, s) for a, s in ROW] + loao_tables(),
    output:
        table=report(
            LAYOUT.table_file("hypotheses"),
            caption="../report/hypotheses.rst",
            category="Hypothesis tests",
            subcategory="Tables",
            labels={"table": "hypotheses"},
        ),
        cohort=LAYOUT.table_file("hypotheses_cohort"),
        groups=LAYOUT.table_file("hypotheses_groups"),
        provenance=LAYOUT.table_file("hypotheses", "provenance.json"),
    params:
        groups=json_arg({g: [list(m) for m in members] for g, members in GROUPS.items()}),
        alpha=config["hypotheses"]["alpha"],
        seed=config["hypotheses"]["seed"],
    log:
        LAYOUT.log_file("hypotheses", "cohort"),
    benchmark:
        LAYOUT.benchmark_file("hypotheses", "cohort")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m cebra_pipe hypotheses --inputs {input.tables:q} --groups {params.groups:q}"
        " --alpha {params.alpha} --seed {params.seed} --out {output.table:q}"
        " --cohort {output.cohort:q} --groups-out {output.groups:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


# Training nulls (controls: models retrained on null labels, <set>-shuffled<k>) are
# ordinary training jobs, trained exactly like the real ones (same rule, same step).
# They get their own rule only to be grouped: all training nulls of one session and
# model form the group "training-nulls-<animal>-<session>-<model>", which the SLURM
# profile's group-components turns into one cluster job instead of one per null.
# Local runs ignore groups.
use rule train_single as train_null with:
    wildcard_constraints:
        labels=cp_layout.SHUFFLED_LABELS_WILDCARD,
    group:
        "training-nulls-{animal}-{session}-{model}"


ruleorder: train_null > train_single
