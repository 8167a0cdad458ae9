# 1. ingest: one sheet row -> one validated session file.
# 2. split: deterministic train/valid split of that session.


rule ingest:
    conda:
        CONDA_ENV
    input:
        unpack(ingest_inputs),
    output:
        session=LAYOUT.session_file("{animal}", "{session}"),
        provenance=LAYOUT.session_file("{animal}", "{session}", "provenance.json"),
    params:
        # The sheet's allow_pickle cell, else the config field allow_pickle.
        row=lambda w: json_arg(
            {"allow_pickle": str(config["allow_pickle"]).lower(), **ROW[(w.animal, w.session)]}
        ),
        labels=json_param(config["labels"]),
        trial_key=text_param(config["split"]["trial_key"]),
        # Recordings aligned at ingest only; prepared arrays get {} (see config/README.md).
        recording=json_param({k: config[k] for k in ("time_base", "neural", "trials")
                              if config.get(k)} if "time_base" in config else {}),
    log:
        LAYOUT.log_file("ingest", "{animal}", "{session}"),
    benchmark:
        LAYOUT.benchmark_file("ingest", "{animal}", "{session}")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "python -m cebra_pipe ingest --row {params.row:q} --labels {params.labels:q}"
        " --trial-key {params.trial_key:q} --recording {params.recording:q}"
        " --out {output.session:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"


rule split:
    conda:
        CONDA_ENV
    input:
        session=LAYOUT.session_file("{animal}", "{session}"),
    output:
        split=LAYOUT.split_file("{animal}", "{session}"),
        provenance=LAYOUT.split_file("{animal}", "{session}", "provenance.json"),
    params:
        method=config["split"]["method"],
        valid_fraction=config["split"]["valid_fraction"],
        num_blocks=config["split"]["num_blocks"],
        min_samples=config["split"]["min_samples"],
    log:
        LAYOUT.log_file("split", "{animal}", "{session}"),
    benchmark:
        LAYOUT.benchmark_file("split", "{animal}", "{session}")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m cebra_pipe split --session {input.session:q} --method {params.method:q}"
        " --valid-fraction {params.valid_fraction} --num-blocks {params.num_blocks}"
        " --min-samples {params.min_samples} --out {output.split:q}"
        " --provenance {output.provenance:q} > {log:q} 2>&1"
