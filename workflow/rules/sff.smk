# Scalable Forward-Forward (Krutsylo, arXiv 2501.03176) vs BP on torchvision ResNet-18 / MobileNetV3:
# accuracy over seeds per column (experiment label: full data, layer-wise, small data), time per epoch and
# activation bytes held per step (sff-bench, run alone), and the tuned protocol's runs for the claims ledger.
# The training rules reuse Table 3's (same shell commands and resources), with their own paths and specs.
SFF = config["sff"]
SFF_TUNE = SFF["tuned"]
SFF_BENCH = SFF["bench"]


def sff_spec(column, suffix="", **values):
    """Run spec of one sff job. A column's overrides match its label (e.g. `when: {experiment: sff_small}`);
    the tuned protocol's jobs carry the tuning keys and are labelled `<column>_tune` / `<column>_tuned`."""
    if suffix:
        values = {**{k: SFF_TUNE[k] for k in ("optimizer", "val_fraction", "patience")}, **values}
    spec = json.loads(run_spec("sff", experiment=column, **values))
    spec["experiment"] = column + suffix
    return json.dumps(spec, sort_keys=True)


def _sff_cells(columns):
    return [(c, d, a, alg) for c in columns for d in SFF["datasets"] for a in SFF["archs"] for alg in SFF["columns"][c]]


def sff_runs():
    return [res(f"sff/{c}/{d}/{a}/{alg}/seed{s}.csv") for c, d, a, alg in _sff_cells(SFF["columns"])
            for s in SFF["seeds"]]


def sff_tuned_runs():
    if not SFF_TUNE["enabled"]:
        return []
    return [res(f"sff_tuned/{c}/{d}/{a}/{alg}/seed{s}.csv") for c, d, a, alg in _sff_cells(SFF_TUNE["columns"])
            for s in SFF["seeds"]]


def sff_bench_csvs():
    return expand(res("sff/bench/{dataset}/{arch}/seed{seed}.csv"), dataset=SFF_BENCH["datasets"],
                  arch=SFF_BENCH["archs"], seed=SFF_BENCH["seeds"])


_SFF_WC = dict(column="[^/]+", dataset="[^/]+", arch="[^/]+", algorithm="[^/]+", seed=r"\d+")


use rule table3_run as sff_run with:
    output:
        csv=res("sff/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("sff/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    wildcard_constraints:
        **_SFF_WC,
    params:
        spec=lambda wc: sff_spec(wc.column, dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm,
                                 seed=int(wc.seed)),
    log:
        logf("sff/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.log"),


# --- the tuned protocol: lr / weight decay chosen on validation per cell, then early stopping ---
use rule table3_tune_run as sff_tune_run with:
    output:
        csv=res("sff_tuned/grid/{column}/{dataset}/{arch}/{algorithm}/lr{lr}_wd{wd}/seed{seed}.csv"),
        meta=res("sff_tuned/grid/{column}/{dataset}/{arch}/{algorithm}/lr{lr}_wd{wd}/seed{seed}.meta.json"),
    wildcard_constraints:
        **_SFF_WC,
    params:
        spec=lambda wc: sff_spec(wc.column, "_tune", dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm,
                                 lr=float(wc.lr), weight_decay=float(wc.wd), seed=int(wc.seed)),
    log:
        logf("sff_tuned/grid/{column}/{dataset}/{arch}/{algorithm}/lr{lr}_wd{wd}/seed{seed}.log"),


use rule table3_tune_select as sff_tune_select with:
    input:
        lambda wc: [res(f"sff_tuned/grid/{wc.column}/{wc.dataset}/{wc.arch}/{wc.algorithm}/lr{lr}_wd{wd}/seed{s}.csv")
                    for lr in SFF_TUNE["grid"]["lr"] for wd in SFF_TUNE["grid"]["weight_decay"]
                    for s in SFF_TUNE["select_seeds"]],
    output:
        choice=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/choice.json"),
        scores=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/grid_scores.json"),
    wildcard_constraints:
        **_SFF_WC,
    log:
        logf("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/select.log"),


use rule table3_tuned_run as sff_tuned_run with:
    input:
        choice=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/choice.json"),
    output:
        csv=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    wildcard_constraints:
        **_SFF_WC,
    params:
        spec=lambda wc: sff_spec(wc.column, "_tuned", dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm,
                                 seed=int(wc.seed)),
    log:
        logf("sff_tuned/{column}/{dataset}/{arch}/{algorithm}/seed{seed}.log"),


# --- time per epoch and held activation bytes, SFF-hybrid vs BP, measured alone ---
def sff_bench_spec(wc, algorithm):
    return sff_spec("sff_bench", dataset=wc.dataset, arch=wc.arch, algorithm=algorithm, seed=int(wc.seed),
                    **SFF_BENCH["run"])


rule sff_bench:
    output:
        csv=res("sff/bench/{dataset}/{arch}/seed{seed}.csv"),
        meta=res("sff/bench/{dataset}/{arch}/seed{seed}.meta.json"),
        txt=res("sff/bench/{dataset}/{arch}/seed{seed}.txt"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        seed=r"\d+",
    params:
        sff=lambda wc: sff_bench_spec(wc, "sff"),
        bp=lambda wc: sff_bench_spec(wc, "bp"),
        n_train=SFF_BENCH["n_train"],
        repeats=SFF_BENCH["repeats"],
        blocks=" ".join(["--blocks", *map(str, SFF_BENCH["blocks"])]) if SFF_BENCH["blocks"] else "",
    log:
        logf("sff/bench/{dataset}/{arch}/seed{seed}.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench sff-bench --sff-spec '{params.sff}' --bp-spec '{params.bp}' --n-train {params.n_train} "
        "--repeats {params.repeats} {params.blocks} --out {output.csv} > {output.txt} 2> {log}"


rule sff_table:
    localrule: True
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
    shell:
        "mfbench sff-table {input.runs} --bench {input.bench} --out {output.csv} --figure {output.png} "
        "--cost-figure {output.cost} 2> {log}"


ALL_TARGETS += rules.sff_table.output
EVIDENCE["sff"] = sff_runs() + sff_tuned_runs() + sff_bench_csvs()
