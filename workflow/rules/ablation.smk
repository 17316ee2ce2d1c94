# The ablation ladder (Spyra & Dzwinel): BP -> BP-DS (+ MF-style readout losses) -> MF-joint (MF's readouts and
# losses, no output head, no detach) -> MF (+ detach), on Table 3's MLP of each dataset, under both cost
# protocols: matched passes (B) and each rule to its own convergence (A). One job per (protocol, dataset, rule)
# trains every seed in one process; it runs alone, because its summary reports time and energy per run.
rule ablation_run:
    output:
        csv=expand(res("ablation/{{protocol}}/{{dataset}}/{{algorithm}}/seed{seed}.csv"), seed=ABL["seeds"]),
        meta=expand(res("ablation/{{protocol}}/{{dataset}}/{{algorithm}}/seed{seed}.meta.json"), seed=ABL["seeds"]),
    log:
        logf("ablation/{protocol}/{dataset}/{algorithm}.log"),
    wildcard_constraints:
        protocol="|".join(ABL_PROTOCOLS),
        dataset="[^/]+",
        algorithm="[^/]+",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        spec=ablation_spec,
        seeds=" ".join(str(s) for s in ABL["seeds"]),
        out=lambda wc: res(f"ablation/{wc.protocol}/{wc.dataset}/{wc.algorithm}/seed{{seed}}.csv"),
    shell:
        "mfbench train --spec {params.spec:q} --seeds {params.seeds} --out {params.out:q} 2>&1 | tee {log}"


rule ablation:
    input:
        [r for p in ABL_PROTOCOLS for r in ablation_runs(p)],
    output:
        csv=report(res("ablation/summary.csv"), caption="../report/ablation.rst", category="Ablation ladder"),
        png=report(fig("ablation.png"), caption="../report/ablation.rst", category="Ablation ladder"),
        pdf=fig("ablation.pdf"),
    log:
        logf("ablation/summary.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench ablation-summary {input} --out {output.csv} --figure {output.png} 2>&1 | tee {log}"


if ABL["enabled"]:
    ALL_TARGETS += rules.ablation.output
    TABLES[rules.ablation.output.csv] = "Ablation ladder"
    for p in ABL_PROTOCOLS:
        EVIDENCE[f"ablation_{p}"] = ablation_runs(p)
