# Forward-Forward baselines: Hinton's MNIST setup and the FF-vs-backprop study.


rule hinton_ff_run:
    output:
        csv=res("hinton_ff/{dataset}/seed{seed}.csv"),
        meta=res("hinton_ff/{dataset}/seed{seed}.meta.json"),
    log:
        logf("hinton_ff/{dataset}/seed{seed}.log"),
    wildcard_constraints:
        dataset="[^/]+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: run_spec("hinton_ff", experiment="hinton_ff", dataset=wc.dataset, seed=int(wc.seed)),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule hinton_ff:
    input:
        expand(res("hinton_ff/{dataset}/seed{seed}.csv"), dataset=HFF["datasets"], seed=HFF["seeds"]),
    output:
        csv=report(
            res("hinton_ff/hinton_ff.csv"), caption="../report/ff_hinton.rst", category="Forward-Forward baselines"
        ),
        png=report(fig("hinton_ff.png"), caption="../report/ff_hinton.rst", category="Forward-Forward baselines"),
        pdf=fig("hinton_ff.pdf"),
    log:
        logf("hinton_ff/hinton_ff.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench ff-hinton {input} --out {output.csv} --figure {output.png} 2>&1 | tee {log}"


# The benchmark file is the job's process wall time: the study's end-to-end time.
rule ff_study_run:
    output:
        csv=res("ff_study/{dataset}/{algorithm}/seed{seed}.csv"),
        meta=res("ff_study/{dataset}/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("ff_study/{dataset}/{algorithm}/seed{seed}.log"),
    benchmark:
        res("ff_study/{dataset}/{algorithm}/seed{seed}.bench.tsv")
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="ff|bp",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        spec=lambda wc: ff_study_spec(wc.dataset, wc.algorithm, wc.seed),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


# stdout (the ratios) goes to speed.txt, stderr to the console and the log: `2>&1 >file | tee`.
rule ff_study_speed:
    output:
        csv=res("ff_study/speed.csv"),
        meta=res("ff_study/speed.meta.json"),
        txt=res("ff_study/speed.txt"),
    log:
        logf("ff_study/speed.log"),
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        ff=lambda wc: ff_study_spec(FFS["bench_dataset"], "ff", FFS["seeds"][0]),
        bp=lambda wc: ff_study_spec(FFS["bench_dataset"], "bp", FFS["seeds"][0]),
        repeats=FFS["bench_repeats"],
    shell:
        "mfbench ff-bench --ff-spec {params.ff:q} --bp-spec {params.bp:q} --repeats {params.repeats}"
        " --out {output.csv} 2>&1 > {output.txt} | tee {log}"


rule ff_study:
    input:
        runs=expand(
            res("ff_study/{dataset}/{algorithm}/seed{seed}.csv"),
            dataset=FFS["datasets"],
            algorithm=FFS["algorithms"],
            seed=FFS["seeds"],
        ),
        bench=expand(
            res("ff_study/{dataset}/{algorithm}/seed{seed}.bench.tsv"),
            dataset=FFS["datasets"],
            algorithm=FFS["algorithms"],
            seed=FFS["seeds"],
        ),
        speed=res("ff_study/speed.csv"),
    output:
        csv=report(res("ff_study/ff_study.csv"), caption="../report/ff_study.rst", category="Forward-Forward baselines"),
        png=report(fig("ff_study.png"), caption="../report/ff_study.rst", category="Forward-Forward baselines"),
        pdf=fig("ff_study.pdf"),
    log:
        logf("ff_study/ff_study.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench ff-study {input.runs} --speed {input.speed} --out {output.csv} --figure {output.png} 2>&1 | tee {log}"


ALL_TARGETS += rules.hinton_ff.output
ALL_TARGETS += rules.ff_study.output
TABLES[rules.hinton_ff.output.csv] = "Forward-Forward baselines"
TABLES[rules.ff_study.output.csv] = "Forward-Forward baselines"
EVIDENCE["hinton_ff"] = rules.hinton_ff.input
EVIDENCE["ff_study"] = rules.ff_study.input.runs
