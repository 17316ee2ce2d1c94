# Table 3: test accuracy, BP vs MF (both prediction modes), MLP and CNN, four datasets.
# Training jobs print one line per epoch: `2>&1 | tee {log}` shows it (and any error) on the
# console as well as in the log; pipefail keeps mfbench's exit status.


rule table3_run:
    output:
        csv=res("table3/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("table3/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("table3/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: table3_spec(wc, int(wc.seed)),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


if wfconfig.seed_stack(T3, "table3") > 1:

    ruleorder: table3_cell > table3_run

    # seed_stack: a cell's seeds in one job (one process), k at a time as one stacked model where the
    # cell can stack; each seed's CSV, metadata and checkpoint as its own job writes them.
    rule table3_cell:
        output:
            csv=[res(f"table3/{{dataset}}/{{arch}}/{{algorithm}}/seed{s}.csv") for s in T3["seeds"]],
            meta=[res(f"table3/{{dataset}}/{{arch}}/{{algorithm}}/seed{s}.meta.json") for s in T3["seeds"]],
        log:
            logf("table3/{dataset}/{arch}/{algorithm}/cell.log"),
        wildcard_constraints:
            dataset="[^/]+",
            arch="[^/]+",
            algorithm="[^/]+",
        conda:
            ENV
        threads: TRAIN_THREADS
        resources:
            **TRAIN_RES,
        params:
            spec=lambda wc: table3_spec(wc, T3["seeds"][0]),
            seeds=" ".join(map(str, T3["seeds"])),
            stack=lambda wc: T3["seed_stack"] if wfconfig.can_stack(json.loads(table3_spec(wc, 0))) else 1,
            out=lambda wc: res(f"table3/{wc.dataset}/{wc.arch}/{wc.algorithm}/seed{{seed}}.csv"),
        shell:
            "mfbench train --spec {params.spec:q} --seeds {params.seeds} --seed-stack {params.stack}"
            " --out {params.out:q} 2>&1 | tee {log}"


rule table3:
    input:
        table3_runs(),
    output:
        csv=report(res("table3/table3.csv"), caption="../report/table3.rst", category="Accuracy (Table 3)"),
        png=report(fig("table3.png"), caption="../report/table3.rst", category="Accuracy (Table 3)"),
        pdf=fig("table3.pdf"),
    log:
        logf("table3/table3.log"),
    localrule: True
    conda:
        ENV
    params:
        selection=T3["selection"],
    shell:
        "mfbench table3 {input} --out {output.csv} --figure {output.png} --selection {params.selection}"
        " 2>&1 | tee {log}"


ALL_TARGETS += rules.table3.output
TABLES[rules.table3.output.csv] = "Accuracy (Table 3)"
EVIDENCE["table3"] = table3_runs()


# --- the `tuned` protocol: an equal-budget quasi-random search per rule and cell, chosen on validation ---
# One job per trial: it trains the trial's point on every tuning seed (`--seeds`, one process).
rule table3_tune_run:
    output:
        csv=trial_outputs(res("table3_tuned/trials/{dataset}/{arch}/{algorithm}"), TUNE, ".csv"),
        meta=trial_outputs(res("table3_tuned/trials/{dataset}/{arch}/{algorithm}"), TUNE, ".meta.json"),
    log:
        logf("table3_tuned/trials/{dataset}/{arch}/{algorithm}/t{trial}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        algorithm="[^/]+",
        trial=r"\d+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=tune_trial_spec,
        seeds=seeds_arg(TUNE),
        out=lambda wc: res(f"table3_tuned/trials/{wc.dataset}/{wc.arch}/{wc.algorithm}/t{wc.trial}/seed{{seed}}.csv"),
    shell:
        "mfbench train --spec {params.spec:q} --seeds {params.seeds} --out {params.out:q} 2>&1 | tee {log}"


rule table3_tune_select:
    input:
        tune_trial_runs,
    output:
        choice=res("table3_tuned/{dataset}/{arch}/{algorithm}/choice.json"),
        trials=res("table3_tuned/{dataset}/{arch}/{algorithm}/trials.csv"),
    log:
        logf("table3_tuned/{dataset}/{arch}/{algorithm}/select.log"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        algorithm="[^/]+",
    localrule: True
    conda:
        ENV
    params:
        primary=lambda wc: TUNE["primary_mode"][wc.algorithm],
        space=json.dumps(TUNE["search"], sort_keys=True),
    shell:
        "mfbench tune-select {input} --primary-mode {params.primary} --space {params.space:q}"
        " --out {output.choice} --report {output.trials} 2>&1 | tee {log}"


rule table3_tuned_run:
    input:
        choice=res("table3_tuned/{dataset}/{arch}/{algorithm}/choice.json"),
    output:
        csv=res("table3_tuned/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("table3_tuned/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("table3_tuned/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="[^/]+",
        algorithm="[^/]+",
        seed=r"\d+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: tune_spec(wc, experiment="table3_tuned", seed=int(wc.seed)),
    shell:
        "mfbench train --spec {params.spec:q} --spec-file {input.choice} --out {output.csv} 2>&1 | tee {log}"


EVIDENCE["table3"] += table3_tuned_runs()
