# Fig. 4: accuracy per epoch, MF (both prediction modes) vs BP, one panel per dataset.
# Fig. 5: the same per depth (n x width MLPs), plus epochs to a target accuracy per depth.
# Fail at parse time, not after hours of training, when a Fig. 5 dataset has no target.
_no_target = [d for d in F5["datasets"] if d not in F5["target"]["accuracy"]]
if _no_target:
    raise ValueError(
        f"fig5.target.accuracy has no target for dataset(s) {_no_target}; "
        f"given for: {sorted(F5['target']['accuracy'])}"
    )


rule fig4_run:
    output:
        csv=res("fig4/{dataset}/{algorithm}/seed{seed}.csv"),
        meta=res("fig4/{dataset}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("fig4/{dataset}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="[^/]+",
        seed=r"\d+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: run_spec(
            "fig4", experiment="fig4", dataset=wc.dataset, algorithm=wc.algorithm, seed=int(wc.seed)
        ),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule fig4_summary:
    input:
        fig4_runs(),
    output:
        res("fig4/fig4_summary.csv"),
    log:
        logf("fig4/fig4_summary.log"),
    localrule: True
    conda:
        ENV
    params:
        split=F4.get("split", "test"),
    shell:
        "mfbench fig4-summary {input} --split {params.split} --out {output} 2>&1 | tee {log}"


rule fig4:
    input:
        rules.fig4_summary.output,
    output:
        png=report(fig("fig4_convergence.png"), caption="../report/fig4.rst", category="Convergence (Fig. 4, 5)"),
        pdf=fig("fig4_convergence.pdf"),
    log:
        logf("fig4/fig4.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench fig4-figure {input} --out {output.png} 2>&1 | tee {log}"


rule fig5_run:
    output:
        csv=res("fig5/{dataset}/depth{depth}/{algorithm}/seed{seed}.csv"),
        meta=res("fig5/{dataset}/depth{depth}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("fig5/{dataset}/depth{depth}/{algorithm}/seed{seed}.log"),
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
            experiment="fig5",
            dataset=wc.dataset,
            depth=int(wc.depth),
            algorithm=wc.algorithm,
            seed=int(wc.seed),
        ),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule fig5_summary:
    input:
        fig5_runs(),
    output:
        curves=res("fig5/fig5_summary.csv"),
        target=res("fig5/fig5_epochs_to_target.csv"),
        target_runs=res("fig5/fig5_epochs_to_target_runs.csv"),
    log:
        logf("fig5/fig5_summary.log"),
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


rule fig5:
    input:
        curves=rules.fig5_summary.output.curves,
        target=rules.fig5_summary.output.target,
    output:
        png=report(fig("fig5_convergence_depth.png"), caption="../report/fig5.rst", category="Convergence (Fig. 4, 5)"),
        pdf=fig("fig5_convergence_depth.pdf"),
        target_png=report(
            fig("fig5_epochs_to_target.png"), caption="../report/fig5_target.rst", category="Convergence (Fig. 4, 5)"
        ),
        target_pdf=fig("fig5_epochs_to_target.pdf"),
    log:
        logf("fig5/fig5.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench fig5-figure {input.curves} {input.target} --out {output.png} --target-out {output.target_png}"
        " 2>&1 | tee {log}"


ALL_TARGETS += [*rules.fig4_summary.output, *rules.fig4.output, *rules.fig5_summary.output, *rules.fig5.output]
TABLES[rules.fig5_summary.output.target] = "Convergence (Fig. 4, 5)"
EVIDENCE["fig4"] = fig4_runs()
EVIDENCE["fig5"] = [rules.fig5_summary.output.target_runs]  # one file: a list, not its characters
