# Controls the claims need (issue 7): each its own `experiment` label, with the SAME seeds and
# otherwise identical run specs as the runs it controls, so the ledger pairs them by seed.
#   fig5_he                 Fig. 5 again, hidden layers He-initialised (run key init: he)
#   table3_frozen_m         MF on Table 3's MLP cells with every projection M_i frozen at init
#   mf_schedule_matched     greedy vs simultaneous MF at matched passes (the re-evaluation's protocol B)
#   mf_schedule_converged   the same, each schedule early-stopped on validation (protocol A)
# Their run lists and specs: specs.smk.


# --- Fig. 5 with He init ----------------------------------------------------------------------
rule fig5_he_run:
    output:
        csv=res("fig5_he/{dataset}/depth{depth}/{algorithm}/seed{seed}.csv"),
        meta=res("fig5_he/{dataset}/depth{depth}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("fig5_he/{dataset}/depth{depth}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="[^/]+",
        depth=r"\d+",
        seed=r"\d+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: run_spec(
            "fig5",
            experiment="fig5_he",
            dataset=wc.dataset,
            depth=int(wc.depth),
            algorithm=wc.algorithm,
            seed=int(wc.seed),
            init="he",
        ),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule fig5_he_summary:
    input:
        fig5_he_runs(),
    output:
        curves=res("fig5_he/fig5_he_summary.csv"),
        target=res("fig5_he/fig5_he_epochs_to_target.csv"),
        target_runs=res("fig5_he/fig5_he_epochs_to_target_runs.csv"),
    log:
        logf("fig5_he/fig5_he_summary.log"),
    localrule: True
    conda:
        ENV
    params:
        targets=" ".join(f"--target {d}={v}" for d, v in F5["target"]["accuracy"].items()),
        split=F5.get("split", "test"),
        target_split=F5["target"].get("split", "val"),
    shell:
        "mfbench fig5-summary {input} --split {params.split} {params.targets} --target-split {params.target_split}"
        " --out {output.curves} --target-out {output.target} --target-runs-out {output.target_runs} 2>&1 | tee {log}"


# Epochs to target: default init (fig5, solid) beside He init (fig5_he, dashed), one panel per dataset.
rule fig5_he:
    input:
        curves=rules.fig5_he_summary.output.curves,
        default=rules.fig5_summary.output.target,
        he=rules.fig5_he_summary.output.target,
    output:
        png=report(fig("fig5_he_convergence_depth.png"), caption="../report/fig5_he.rst", category="Controls"),
        pdf=fig("fig5_he_convergence_depth.pdf"),
        target_png=report(fig("fig5_he_epochs_to_target.png"), caption="../report/fig5_he.rst", category="Controls"),
        target_pdf=fig("fig5_he_epochs_to_target.pdf"),
    log:
        logf("fig5_he/fig5_he.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench fig5-figure {input.curves} {input.default} {input.he} --out {output.png}"
        " --target-out {output.target_png} 2>&1 | tee {log}"


# --- Table 3's MLP cells with the projections frozen ------------------------------------------------
rule table3_frozen_m_run:
    output:
        csv=res("table3_frozen_m/{dataset}/seed{seed}.csv"),
        meta=res("table3_frozen_m/{dataset}/seed{seed}.meta.json"),
    log:
        logf("table3_frozen_m/{dataset}/seed{seed}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        seed=r"\d+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: with_keys(
            run_spec(
                "table3",
                experiment="table3_frozen_m",
                dataset=wc.dataset,
                arch="mlp",
                algorithm="mf",
                seed=int(wc.seed),
            ),
            {"learn_projection": False},
        ),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule table3_frozen_m:
    input:
        learned=[res(f"table3/{d}/mlp/mf/seed{s}.csv") for d in frozen_m_cells() for s in T3["seeds"]],
        frozen=frozen_m_runs(),
    output:
        csv=report(res("table3_frozen_m/summary.csv"), caption="../report/table3_frozen_m.rst", category="Controls"),
        png=report(fig("table3_frozen_m.png"), caption="../report/table3_frozen_m.rst", category="Controls"),
        pdf=fig("table3_frozen_m.pdf"),
    log:
        logf("table3_frozen_m/summary.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench controls-summary {input.learned} {input.frozen} --out {output.csv} --figure {output.png}"
        " --title 'MF with learned vs frozen projections M_i (Table 3 MLPs)' 2>&1 | tee {log}"


# --- greedy vs simultaneous MF: matched passes (B) and own convergence (A) ------------------------
rule mf_schedule_run:
    output:
        csv=res("mf_schedule/{protocol}/{dataset}/{schedule}/seed{seed}.csv"),
        meta=res("mf_schedule/{protocol}/{dataset}/{schedule}/seed{seed}.meta.json"),
    log:
        logf("mf_schedule/{protocol}/{dataset}/{schedule}/seed{seed}.log"),
    wildcard_constraints:
        protocol="|".join(SCHEDULE_PROTOCOLS),
        dataset="[^/]+",
        schedule="greedy|simultaneous",
        seed=r"\d+",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,  # its summary reports energy per run (NVML counter of the whole GPU): alone, or others' joules count
    params:
        spec=lambda wc: mf_schedule_spec(wc.protocol, wc.dataset, wc.schedule, wc.seed),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule mf_schedule:
    input:
        [r for p in SCHEDULE_PROTOCOLS for r in mf_schedule_runs(p)],
    output:
        csv=report(res("mf_schedule/summary.csv"), caption="../report/mf_schedule.rst", category="Controls"),
        png=report(fig("mf_schedule.png"), caption="../report/mf_schedule.rst", category="Controls"),
        pdf=fig("mf_schedule.pdf"),
    log:
        logf("mf_schedule/summary.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench controls-summary {input} --out {output.csv} --figure {output.png}"
        " --title 'MF greedy vs simultaneous: matched passes (B) and own convergence (A)' 2>&1 | tee {log}"


if CTL["fig5_he"]["enabled"]:
    ALL_TARGETS += [*rules.fig5_he_summary.output, *rules.fig5_he.output]
    EVIDENCE["fig5_he"] = [rules.fig5_he_summary.output.target_runs]
if frozen_m_cells():
    ALL_TARGETS += rules.table3_frozen_m.output
    TABLES[rules.table3_frozen_m.output.csv] = "Controls"
    EVIDENCE["table3_frozen_m"] = frozen_m_runs()
if MFS["enabled"]:
    ALL_TARGETS += rules.mf_schedule.output
    TABLES[rules.mf_schedule.output.csv] = "Controls"
    for p in SCHEDULE_PROTOCOLS:
        EVIDENCE[f"mf_schedule_{p}"] = mf_schedule_runs(p)
