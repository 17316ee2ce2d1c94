# Table 4: prediction latency of MF (FF-pred, BP-pred) vs BP on the Table 3 models, untrained.
# Table 5: training time per epoch, MF vs BP, from dedicated timing jobs that run alone on the device
# (Table 3's models and run specs, table5.epochs epochs): the Table 3 runs share the GPU, so their
# epoch times would measure the contention.


rule table4_latency:
    output:
        csv=res("table4/{dataset}/{arch}.csv"),
        meta=res("table4/{dataset}/{arch}.meta.json"),
    log:
        logf("table4/{dataset}/{arch}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="mlp|cnn",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        specs=latency_specs,
        sizes=" ".join(map(str, LAT["batch_sizes"])),
        repeats=LAT["repeats"],
        warmup=LAT["warmup"],
    shell:
        "mfbench latency {params.specs} --batch-sizes {params.sizes} --repeats {params.repeats}"
        " --warmup {params.warmup} --out {output.csv} 2>&1 | tee {log}"


rule table4:
    input:
        expand(res("table4/{dataset}/{arch}.csv"), dataset=LAT["datasets"], arch=LAT["archs"]),
    output:
        csv=report(res("table4/table4.csv"), caption="../report/table4.rst", category="Timing (Table 4, 5)"),
        png=report(fig("table4_latency.png"), caption="../report/table4.rst", category="Timing (Table 4, 5)"),
        pdf=fig("table4_latency.pdf"),
    log:
        logf("table4/table4.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench table4 {input} --out {output.csv} --figure {output.png} 2>&1 | tee {log}"


rule table5_run:
    output:
        csv=res("table5/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("table5/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("table5/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="mlp|cnn",
        algorithm="[^/]+",
        seed=r"\d+",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        spec=lambda wc: run_spec(
            "table3",
            experiment="table5",
            dataset=wc.dataset,
            arch=wc.arch,
            algorithm=wc.algorithm,
            seed=int(wc.seed),
            epochs=T5["epochs"],
        ),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule table5:
    input:
        table5_runs(),
    output:
        csv=report(res("table5/table5.csv"), caption="../report/table5.rst", category="Timing (Table 4, 5)"),
        png=report(fig("table5_epoch_time.png"), caption="../report/table5.rst", category="Timing (Table 4, 5)"),
        pdf=fig("table5_epoch_time.pdf"),
    log:
        logf("table5/table5.log"),
    localrule: True
    conda:
        ENV
    params:
        skip_epochs=T5["skip_epochs"],
    shell:
        "mfbench table5 {input} --skip-epochs {params.skip_epochs} --out {output.csv} --figure {output.png}"
        " 2>&1 | tee {log}"


ALL_TARGETS += rules.table4.output
ALL_TARGETS += rules.table5.output
TABLES[rules.table4.output.csv] = "Timing (Table 4, 5)"
TABLES[rules.table5.output.csv] = "Timing (Table 4, 5)"
EVIDENCE["table4"] = rules.table4.input
EVIDENCE["table5"] = rules.table5.input
