# 3. train_single: all seeds of one (session, model, label set) in one job.
# 4. train_multi: all seeds of one (session group, model, label set) in one job.
# Training is the long work and everything after it waits on it, so training jobs start
# before ready evaluation jobs (`priority:`), the multi-session job (the longest, with
# the cohort's decoding, consistency and overview behind it) first of all: otherwise
# Snakemake picks among ready jobs arbitrarily and a late long job leaves cores idle at
# the end of the run.
# Checkpoints live outside the declared outputs (<analysis>/checkpoints/...), so a
# killed job resumes from its last checkpoint after `--rerun-incomplete`.


_SINGLE = LAYOUT.single_dir("{animal}", "{session}", "{model}", "{labels}")


rule train_single:
    priority: 10
    conda:
        CONDA_ENV
    input:
        session=LAYOUT.session_file("{animal}", "{session}"),
        split=LAYOUT.split_file("{animal}", "{session}"),
    output:
        model=seed_outputs(_SINGLE, "model.pt"),
        train=seed_outputs(_SINGLE, "embedding_train.npy"),
        valid=seed_outputs(_SINGLE, "embedding_valid.npy"),
        loss=seed_outputs(_SINGLE, "loss.tsv"),
        provenance=seed_outputs(_SINGLE, "provenance.json"),
    params:
        model=lambda w: json_arg(cp_config.model_params(config, w.model)),
        labels=lambda w: json_arg(cp_config.label_spec(config, variant(w.model, w.labels))),
        seeds=",".join(map(str, SEEDS)),
        device=config["device"],
        outdir=_SINGLE,
        checkpoints=LAYOUT.checkpoint_dir("single", "{animal}", "{session}", "{model}", "{labels}"),
    log:
        LAYOUT.log_file("train_single", "{animal}", "{session}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("train_single", "{animal}", "{session}", "{model}", "{labels}")
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=lambda w: config["models"][w.model]["mem_mb"],
        runtime=lambda w: config["models"][w.model]["runtime"],
    shell:
        "python -m cebra_pipe train-single --session {input.session:q} --split {input.split:q}"
        " --model {params.model:q} --labels {params.labels:q} --seeds {params.seeds}"
        " --device {params.device:q} --threads {threads} --outdir {params.outdir:q}"
        " --checkpoints {params.checkpoints:q} > {log:q} 2>&1"


_MULTI = LAYOUT.multi_dir("{group}", "{model}", "{labels}")


rule train_multi:
    priority: 20
    conda:
        CONDA_ENV
    input:
        sessions=group_files("session"),
        splits=group_files("split"),
    output:
        model=seed_outputs(_MULTI, "model.pt"),
        embeddings=seed_outputs(_MULTI, "embeddings.npz"),
        loss=seed_outputs(_MULTI, "loss.tsv"),
        provenance=seed_outputs(_MULTI, "provenance.json"),
    params:
        model=lambda w: json_arg(cp_config.model_params(config, w.model)),
        labels=lambda w: json_arg(cp_config.label_spec(config, variant(w.model, w.labels))),
        seeds=",".join(map(str, SEEDS)),
        device=config["device"],
        outdir=_MULTI,
        checkpoints=LAYOUT.checkpoint_dir("multi", "{group}", "{model}", "{labels}"),
    log:
        LAYOUT.log_file("train_multi", "{group}", "{model}", "{labels}"),
    benchmark:
        LAYOUT.benchmark_file("train_multi", "{group}", "{model}", "{labels}")
    threads: config["threads"]
    resources:
        gpu=1,
        mem_mb=lambda w: config["models"][w.model]["mem_mb"],
        runtime=lambda w: config["models"][w.model]["runtime"],
    shell:
        "python -m cebra_pipe train-multi --sessions {input.sessions:q}"
        " --splits {input.splits:q} --model {params.model:q} --labels {params.labels:q}"
        " --seeds {params.seeds} --device {params.device:q} --threads {threads}"
        " --outdir {params.outdir:q} --checkpoints {params.checkpoints:q} > {log:q} 2>&1"
