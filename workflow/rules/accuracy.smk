# Table 3: test accuracy, BP vs MF (both prediction modes), MLP and CNN, four datasets.
T3 = config["table3"]


def table3_runs():
    """Every (dataset, arch, algorithm, seed) of the grid, minus `exclude` matches."""
    out = []
    for d in T3["datasets"]:
        for a in T3["archs"]:
            for alg in T3["algorithms"]:
                job = {"dataset": d, "arch": a, "algorithm": alg}
                if any(_matches(x, job) for x in T3.get("exclude", [])):
                    continue
                out += [res(f"table3/{d}/{a}/{alg}/seed{s}.csv") for s in T3["seeds"]]
    return out


rule table3_run:
    output:
        csv=res("table3/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("table3/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    params:
        spec=lambda wc: run_spec("table3", experiment="table3", dataset=wc.dataset, arch=wc.arch,
                                 algorithm=wc.algorithm, seed=int(wc.seed)),
    log:
        logf("table3/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    shell:
        "mfbench train --spec '{params.spec}' --out {output.csv} 2> {log}"


rule table3:
    localrule: True
    input:
        table3_runs(),
    output:
        csv=report(res("table3/table3.csv"), caption="../report/table3.rst", category="Accuracy (Table 3)"),
        png=report(fig("table3.png"), caption="../report/table3.rst", category="Accuracy (Table 3)"),
        pdf=fig("table3.pdf"),
    shell:
        "mfbench table3 {input} --out {output.csv} --figure {output.png} --selection {T3[selection]}"


ALL_TARGETS += rules.table3.output
