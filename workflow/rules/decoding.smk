# 6. decode: kNN decoders fitted on train embeddings, scored on valid embeddings, and
#    the valid-split goodness of fit, per configuration (all seeds in one job).
#    With two seeds or more, the same job then scores the consistency between the seeds
#    (consistency-runs chained with --then): one process start instead of two, and as
#    both read only this configuration's training outputs, changing one model still
#    reruns only its files. Shuffled controls (no consistency) decode in decode_control.
# 7. controls: each label set against its shuffled-label control, per session.


rule decode:
    conda:
        CONDA_ENV
    input:
        session=LAYOUT.session_file("{animal}", "{session}"),
        split=LAYOUT.split_file("{animal}", "{session}"),
        models=lambda w: single_outputs(w.animal, w.session, w.model, w.labels, "model.pt"),
        train=lambda w: single_outputs(w.animal, w.session, w.model, w.labels, "embedding_train.npy"),
        valid=lambda w: single_outputs(w.animal, w.session, w.model, w.labels, "embedding_valid.npy"),
    output:
        table=LAYOUT.decode_file("{animal}", "{session}", "{model}", "{labels}"),
        provenance=LAYOUT.decode_file("{animal}", "{session}", "{model}", "{labels}", "provenance.json"),
        **runs_consistency_outputs(),
    wildcard_constraints:
        labels=cp_layout.REAL_LABELS_WILDCARD,
    params:
        dir=lambda w: LAYOUT.single_dir(w.animal, w.session, w.model, w.labels),
        seeds=",".join(map(str, SEEDS)),
        labels=lambda w: json_arg(cp_config.label_spec(config, variant(w.model, w.labels))),
        targets=json_arg(cp_config.decoding_targets(config)),
        knn=config["decoding"]["knn_neighbors"],
        gof_batches=config["decoding"]["gof_batches"],
        device=config["device"],
        consistency=runs_consistency_step,
    log:
        LAYOUT.log_file("decode", "{animal}", "{session}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("decode", "{animal}", "{session}", "{model}", "{labels}")
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "python -m cebra_pipe decode --sessions {input.session:q} --splits {input.split:q}"
        " --dir {params.dir:q} --seeds {params.seeds} --model-name {wildcards.model:q}"
        " --labels-name {wildcards.labels:q} --labels {params.labels:q}"
        " --targets {params.targets:q} --knn-neighbors {params.knn}"
        " --gof-batches {params.gof_batches} --device {params.device:q}"
        " --threads {threads} --out {output.table:q} --provenance {output.provenance:q}"
        " {params.consistency} > {log:q} 2>&1"


use rule decode as decode_control with:
    output:
        table=LAYOUT.decode_file("{animal}", "{session}", "{model}", "{labels}"),
        provenance=LAYOUT.decode_file("{animal}", "{session}", "{model}", "{labels}", "provenance.json"),
    wildcard_constraints:
        labels=cp_layout.SHUFFLED_LABELS_WILDCARD,
    params:
        consistency="",
    log:
        LAYOUT.log_file("decode", "{animal}", "{session}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("decode", "{animal}", "{session}", "{model}", "{labels}")


rule decode_multi:
    conda:
        CONDA_ENV
    input:
        sessions=group_files("session"),
        splits=group_files("split"),
        models=lambda w: multi_outputs(w.group, w.model, w.labels, "model.pt"),
        embeddings=lambda w: multi_outputs(w.group, w.model, w.labels, "embeddings.npz"),
    output:
        table=LAYOUT.multi_decode_file("{group}", "{model}", "{labels}"),
        provenance=LAYOUT.multi_decode_file("{group}", "{model}", "{labels}", "provenance.json"),
    params:
        dir=lambda w: LAYOUT.multi_dir(w.group, w.model, w.labels),
        seeds=",".join(map(str, SEEDS)),
        labels=lambda w: json_arg(cp_config.label_spec(config, variant(w.model, w.labels))),
        targets=json_arg(cp_config.decoding_targets(config)),
        knn=config["decoding"]["knn_neighbors"],
        gof_batches=config["decoding"]["gof_batches"],
        device=config["device"],
    log:
        LAYOUT.log_file("decode_multi", "{group}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("decode_multi", "{group}", "{model}", "{labels}")
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    shell:
        "python -m cebra_pipe decode --multi --sessions {input.sessions:q}"
        " --splits {input.splits:q} --dir {params.dir:q} --seeds {params.seeds}"
        " --model-name {wildcards.model:q} --labels-name {wildcards.labels:q}"
        " --labels {params.labels:q} --targets {params.targets:q}"
        " --knn-neighbors {params.knn} --gof-batches {params.gof_batches}"
        " --device {params.device:q} --threads {threads} --out {output.table:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


rule controls:
    conda:
        CONDA_ENV
    input:
        decoding=lambda w: decode_targets(w.animal, w.session),
    output:
        table=report(
            LAYOUT.controls_file("{animal}", "{session}"),
            caption="../report/controls.rst",
            category="Hypothesis tests",
            subcategory="Shuffled-label controls",
            labels={"animal": "{animal}", "session": "{session}"},
        ),
        provenance=LAYOUT.controls_file("{animal}", "{session}", "provenance.json"),
    log:
        LAYOUT.log_file("controls", "{animal}", "{session}"),
    benchmark:
        LAYOUT.benchmark_file("controls", "{animal}", "{session}")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m cebra_pipe controls --decoding {input.decoding:q} --out {output.table:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"
