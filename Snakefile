# mfbench: regenerate the Mono-Forward paper's tables and figures beside its baselines.
# Paper scale by default; `--configfile workflow/config/smoke.yaml` for a CPU smoke run.
configfile: "workflow/config/paper.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/specs.smk"  # the artefacts' run lists and specs (functions live apart from rules)
include: "workflow/rules/accuracy.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/convergence.smk"
include: "workflow/rules/timing.smk"
include: "workflow/rules/memory.smk"
include: "workflow/rules/controls.smk"  # after accuracy and convergence: it reuses their sections
include: "workflow/rules/fg.smk"
include: "workflow/rules/sff.smk"  # after accuracy.smk: its training rules reuse Table 3's
include: "workflow/rules/ablation.smk"
include: "workflow/rules/mixer.smk"
include: "workflow/rules/report.smk"  # after every file that registers TABLES
include: "workflow/rules/claims.smk"  # last: it reads every other file's EVIDENCE


rule all:
    default_target: True
    input:
        ALL_TARGETS,


onstart:
    wfconfig.stop_like_ctrl_c_on_sigterm()


onsuccess:
    print(run_summary(ok=True))


onerror:
    print(run_summary(ok=False))
