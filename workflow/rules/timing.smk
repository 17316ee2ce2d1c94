# Table 4: prediction latency of MF (FF-pred, BP-pred) vs BP on the Table 3 models, untrained.
# Table 5: training time per epoch, MF vs BP, from dedicated timing jobs that run alone on the device
# (Table 3's models and run specs, table5.epochs epochs): the Table 3 runs share the GPU, so their
# epoch times would measure the contention.
LAT = config["latency"]
T5 = config["table5"]


def latency_specs(wc):
    """One `--spec` per rule: each rule's Table 3 run spec for this dataset and model family."""
    seed = config["table3"]["seeds"][0]  # untrained weights: the seed changes no timing
    return " ".join(
        "--spec " + shlex.quote(run_spec("table3", experiment="table4", dataset=wc.dataset, arch=wc.arch,
                                         algorithm=alg, seed=seed))  # quoted: a data_dir may hold an apostrophe
        for alg in LAT["algorithms"]
    )


rule table4_latency:
    output:
        csv=res("table4/{dataset}/{arch}.csv"),
        meta=res("table4/{dataset}/{arch}.meta.json"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="mlp|cnn",
    params:
        specs=latency_specs,
        sizes=" ".join(map(str, LAT["batch_sizes"])),
    log:
        logf("table4/{dataset}/{arch}.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench latency {params.specs} --batch-sizes {params.sizes} --repeats {LAT[repeats]} "
        "--warmup {LAT[warmup]} --out {output.csv} 2> {log}"


rule table4:
    localrule: True
    input:
        expand(res("table4/{dataset}/{arch}.csv"), dataset=LAT["datasets"], arch=LAT["archs"]),
    output:
        csv=report(res("table4/table4.csv"), caption="../report/table4.rst", category="Timing (Table 4, 5)"),
        png=report(fig("table4_latency.png"), caption="../report/table4.rst", category="Timing (Table 4, 5)"),
        pdf=fig("table4_latency.pdf"),
    shell:
        "mfbench table4 {input} --out {output.csv} --figure {output.png}"


rule table5_run:
    output:
        csv=res("table5/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        meta=res("table5/{dataset}/{arch}/{algorithm}/seed{seed}.meta.json"),
    wildcard_constraints:
        dataset="[^/]+",
        arch="mlp|cnn",
        algorithm="[^/]+",
        seed=r"\d+",
    params:
        spec=lambda wc: run_spec("table3", experiment="table5", dataset=wc.dataset, arch=wc.arch,
                                 algorithm=wc.algorithm, seed=int(wc.seed), epochs=T5["epochs"]),
    log:
        logf("table5/{dataset}/{arch}/{algorithm}/seed{seed}.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2> {log}"


rule table5:
    localrule: True
    input:
        expand(res("table5/{dataset}/{arch}/{algorithm}/seed{seed}.csv"), dataset=T5["datasets"], arch=T5["archs"],
               algorithm=T5["algorithms"], seed=T5["seeds"]),
    output:
        csv=report(res("table5/table5.csv"), caption="../report/table5.rst", category="Timing (Table 4, 5)"),
        png=report(fig("table5_epoch_time.png"), caption="../report/table5.rst", category="Timing (Table 4, 5)"),
        pdf=fig("table5_epoch_time.pdf"),
    shell:
        "mfbench table5 {input} --skip-epochs {T5[skip_epochs]} --out {output.csv} --figure {output.png}"


ALL_TARGETS += rules.table4.output
ALL_TARGETS += rules.table5.output
EVIDENCE["table4"] = rules.table4.input
EVIDENCE["table5"] = rules.table5.input
