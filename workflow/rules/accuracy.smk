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
        "mfbench train --spec {params.spec:q} --out {output.csv} 2> {log}"


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
EVIDENCE["table3"] = table3_runs()


# --- the `tuned` protocol: each rule's lr / weight decay chosen on validation, same budget ---
TUNE = T3["tuned"]


def tuned_cells():
    return [(d, a, alg) for d in T3["datasets"] for a in T3["archs"] for alg in TUNE["algorithms"]
            if not any(_matches(x, {"dataset": d, "arch": a, "algorithm": alg}) for x in T3.get("exclude", []))]


def tune_spec(wc, **values):
    """Table 3's spec for the cell, under the tuned protocol's optimiser, validation split and early stopping."""
    return run_spec("table3", dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm,
                    optimizer=TUNE["optimizer"], val_fraction=TUNE["val_fraction"], patience=TUNE["patience"],
                    **values)


def tune_grid_runs(wc):
    return [res(f"table3_tuned/grid/{wc.dataset}/{wc.arch}/{wc.algorithm}/lr{lr}_wd{wd}/seed{s}.csv")
            for lr in TUNE["grid"]["lr"] for wd in TUNE["grid"]["weight_decay"] for s in TUNE["select_seeds"]]


def table3_tuned_runs():
    if not TUNE["enabled"]:
        return []
    return [res(f"table3_tuned/{d}/{a}/{alg}/seed{s}.csv") for d, a, alg in tuned_cells() for s in T3["seeds"]]


rule table3_tune_run:
    output:
        csv=res("table3_tuned/grid/{dataset}/{arch}/{algorithm}/lr{lr}_wd{wd}/seed{seed}.csv"),
        meta=res("table3_tuned/grid/{dataset}/{arch}/{algorithm}/lr{lr}_wd{wd}/seed{seed}.meta.json"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        algorithm="[^/]+",
        seed=r"\d+",
    params:
        spec=lambda wc: tune_spec(wc, experiment="table3_tune", lr=float(wc.lr), weight_decay=float(wc.wd),
                                  seed=int(wc.seed)),
    log:
        logf("table3_tuned/grid/{dataset}/{arch}/{algorithm}/lr{lr}_wd{wd}/seed{seed}.log"),
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2> {log}"


rule table3_tune_select:
    localrule: True
    input:
        tune_grid_runs,
    output:
        choice=res("table3_tuned/{dataset}/{arch}/{algorithm}/choice.json"),
        scores=res("table3_tuned/{dataset}/{arch}/{algorithm}/grid_scores.json"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        algorithm="[^/]+",
    log:
        logf("table3_tuned/{dataset}/{arch}/{algorithm}/select.log"),
    shell:
        "mfbench tune-select {input} --out {output.choice} --report {output.scores} > {log}"


rule table3_tuned_run:
    input:
        choice=res("table3_tuned/{dataset}/{arch}/{algorithm}/choice.json"),
    output:
        csv=res("table3_tuned/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("table3_tuned/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        algorithm="[^/]+",
        seed=r"\d+",
    params:
        spec=lambda wc: tune_spec(wc, experiment="table3_tuned", seed=int(wc.seed)),
    log:
        logf("table3_tuned/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    shell:
        "mfbench train --spec {params.spec:q} --spec-file {input.choice} --out {output.csv} 2> {log}"


EVIDENCE["table3"] += table3_tuned_runs()
