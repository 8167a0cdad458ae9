# cebra_pipe: from a sessions sheet to HTML reports (see config/README.md).
#
#   snakemake --cores 2                                   # local run, shipped config
#   snakemake --cores 2 --configfile my/config.yaml       # reanalysis with your config
#   snakemake --profile workflow/profiles/slurm           # on a SLURM cluster
#   snakemake --report results/<analysis>/report/snakemake.html   # Snakemake's own report
#
# Every rule calls `python -m cebra_pipe <step>` (cebra_pipe/pipeline/); no science here.

from snakemake.utils import min_version

from cebra_pipe.pipeline.layout import LABELS_WILDCARD, NAME_PATTERN

min_version("9.0")


# The shipped config, unless --configfile is given: then those files are the whole
# config (no silent merge with the shipped models); defaults come from the schema.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    animal=NAME_PATTERN,
    session=NAME_PATTERN,
    group=NAME_PATTERN,
    model=r"[A-Za-z0-9][A-Za-z0-9_]*",
    labels=LABELS_WILDCARD,
    kind=r"single|multi",


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/consistency.smk"
include: "workflow/rules/decoding.smk"
include: "workflow/rules/hypotheses.smk"
include: "workflow/rules/attribution.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
