# Scalable Forward-Forward (Krutsylo, arXiv 2501.03176) vs BP on torchvision ResNet-18 / MobileNetV3:
# accuracy over seeds per column (experiment label: full data, layer-wise, small data), time per epoch and
# activation bytes held per step (sff-bench, run alone), and the tuned protocol's runs for the claims ledger.
# The training rules reuse Table 3's (same shell commands and resources), with their own paths and specs
# (run lists and specs: specs.smk).
use rule table3_run as sff_run with:
    output:
        csv=res("sff/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("sff/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("sff/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        **_SFF_WC,
    params:
        spec=lambda wc: sff_spec(wc.column, dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm, seed=int(wc.seed)),


# --- the tuned protocol: an equal-budget quasi-random search per cell, then early stopping ---
use rule table3_tune_run as sff_tune_run with:
    output:
        csv=trial_outputs(res("sff_tuned/trials/{column}/{dataset}/{arch}/{algorithm}"), SFF_TUNE, ".csv"),
        meta=trial_outputs(res("sff_tuned/trials/{column}/{dataset}/{arch}/{algorithm}"), SFF_TUNE, ".meta.json"),
    log:
        logf("sff_tuned/trials/{column}/{dataset}/{arch}/{algorithm}/t{trial}.log"),
    wildcard_constraints:
        **_SFF_WC,
        trial=r"\d+",
    params:
        spec=sff_trial_spec,
        seeds=seeds_arg(SFF_TUNE),
        out=lambda wc: res(
            f"sff_tuned/trials/{wc.column}/{wc.dataset}/{wc.arch}/{wc.algorithm}/t{wc.trial}/seed{{seed}}.csv"
        ),


use rule table3_tune_select as sff_tune_select with:
    input:
        sff_trial_runs,
    output:
        choice=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/choice.json"),
        trials=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/trials.csv"),
    log:
        logf("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/select.log"),
    wildcard_constraints:
        **_SFF_WC,
    localrule: True  # `use rule` does not carry it over from table3_tune_select
    params:
        primary=lambda wc: SFF_TUNE["primary_mode"][wc.algorithm],
        space=json.dumps(SFF_TUNE["search"], sort_keys=True),


use rule table3_tuned_run as sff_tuned_run with:
    input:
        choice=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/choice.json"),
    output:
        csv=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        **_SFF_WC,
    params:
        spec=lambda wc: sff_spec(
            wc.column, "_tuned", dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm, seed=int(wc.seed)
        ),


# --- transfer learning: pretrain on some classes (weights kept), then train on new ones from few labels ---
# Both stages go through the one runner (`mfbench train`, checkpointed and resumable like every run); the
# pretrain run's weights file is the transfer job's input, so a changed pretrain reruns its transfer.
use rule table3_run as sff_pretrain_run with:
    output:
        csv=res("sff_transfer/pretrain/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("sff_transfer/pretrain/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
        weights=res("sff_transfer/pretrain/{dataset}/{arch}/{algorithm}/seed{seed}.weights.pt"),
    log:
        logf("sff_transfer/pretrain/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        **_SFF_TR_WC,
    params:
        spec=lambda wc: sff_transfer_spec(wc, "pretrain"),


use rule table3_run as sff_transfer_run with:
    input:
        weights=sff_pretrain_weights,
    output:
        csv=res("sff_transfer/transfer/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("sff_transfer/transfer/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("sff_transfer/transfer/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        **_SFF_TR_WC,
    params:
        spec=lambda wc: sff_transfer_spec(wc, "transfer"),


# --- time per epoch and held activation bytes, SFF-hybrid vs BP, measured alone ---
rule sff_bench:
    output:
        csv=res("sff/bench/{dataset}/{arch}/seed{seed}.csv"),
        meta=res("sff/bench/{dataset}/{arch}/seed{seed}.meta.json"),
        txt=res("sff/bench/{dataset}/{arch}/seed{seed}.txt"),
    log:
        logf("sff/bench/{dataset}/{arch}/seed{seed}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        seed=r"\d+",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        sff=lambda wc: sff_bench_spec(wc, "sff"),
        bp=lambda wc: sff_bench_spec(wc, "bp"),
        n_train=SFF_BENCH["n_train"],
        repeats=SFF_BENCH["repeats"],
        blocks=" ".join(["--blocks", *map(str, SFF_BENCH["blocks"])]) if SFF_BENCH["blocks"] else "",
    shell:
        "mfbench sff-bench --sff-spec {params.sff:q} --bp-spec {params.bp:q} --n-train {params.n_train} "
        "--repeats {params.repeats} {params.blocks} --out {output.csv} 2>&1 > {output.txt} | tee {log}"


rule sff_table:
    input:
        runs=sff_runs(),
        bench=sff_bench_csvs(),
    output:
        csv=report(res("sff/sff.csv"), caption="../report/sff.rst", category="Scalable Forward-Forward"),
        png=report(fig("sff_accuracy.png"), caption="../report/sff.rst", category="Scalable Forward-Forward"),
        pdf=fig("sff_accuracy.pdf"),
        cost=report(fig("sff_cost.png"), caption="../report/sff_cost.rst", category="Scalable Forward-Forward"),
        cost_pdf=fig("sff_cost.pdf"),
    log:
        logf("sff/sff_table.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench sff-table {input.runs} --bench {input.bench} --out {output.csv} --figure {output.png} "
        "--cost-figure {output.cost} 2>&1 | tee {log}"


ALL_TARGETS += rules.sff_table.output
TABLES[rules.sff_table.output.csv] = "Scalable Forward-Forward"
EVIDENCE["sff"] = sff_runs() + sff_tuned_runs() + sff_bench_csvs() + sff_transfer_runs()
