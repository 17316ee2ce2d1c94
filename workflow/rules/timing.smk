# Table 4: prediction latency of MF (FF-pred, BP-pred) vs BP on the Table 3 models, untrained.
# Table 5: training time per epoch, MF vs BP, read from the Table 3 runs (no extra training).


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
    conda:
        ENV
    shell:
        "mfbench table4 {input} --out {output.csv} --figure {output.png} 2>&1 | tee {log}"


rule table5:
    input:
        table3_runs(),
    output:
        csv=report(res("table5/table5.csv"), caption="../report/table5.rst", category="Timing (Table 4, 5)"),
        png=report(fig("table5_epoch_time.png"), caption="../report/table5.rst", category="Timing (Table 4, 5)"),
        pdf=fig("table5_epoch_time.pdf"),
    log:
        logf("table5/table5.log"),
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
