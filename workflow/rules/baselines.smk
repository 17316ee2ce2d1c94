# Forward-Forward baselines: Hinton's MNIST setup and the FF-vs-backprop study.
HFF = config["hinton_ff"]
FFS = config["ff_study"]


rule hinton_ff_run:
    output:
        csv=res("hinton_ff/{dataset}/seed{seed}.csv"),
        meta=res("hinton_ff/{dataset}/seed{seed}.meta.json"),
    wildcard_constraints:
        dataset="[^/]+",
    params:
        spec=lambda wc: run_spec("hinton_ff", experiment="hinton_ff", dataset=wc.dataset, seed=int(wc.seed)),
    log:
        logf("hinton_ff/{dataset}/seed{seed}.log"),
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2> {log}"


rule hinton_ff:
    localrule: True
    input:
        expand(res("hinton_ff/{dataset}/seed{seed}.csv"), dataset=HFF["datasets"], seed=HFF["seeds"]),
    output:
        csv=report(res("hinton_ff/hinton_ff.csv"), caption="../report/ff_hinton.rst", category="Forward-Forward baselines"),
        png=report(fig("hinton_ff.png"), caption="../report/ff_hinton.rst", category="Forward-Forward baselines"),
        pdf=fig("hinton_ff.pdf"),
    shell:
        "mfbench ff-hinton {input} --out {output.csv} --figure {output.png}"


def ff_study_spec(dataset, algorithm, seed):
    return run_spec("ff_study", experiment="ff_study", dataset=dataset, algorithm=algorithm, seed=int(seed))


# The benchmark file is the job's process wall time: the study's end-to-end time.
rule ff_study_run:
    output:
        csv=res("ff_study/{dataset}/{algorithm}/seed{seed}.csv"),
        meta=res("ff_study/{dataset}/{algorithm}/seed{seed}.meta.json"),
    benchmark:
        res("ff_study/{dataset}/{algorithm}/seed{seed}.bench.tsv")
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="ff|bp",
    params:
        spec=lambda wc: ff_study_spec(wc.dataset, wc.algorithm, wc.seed),
    log:
        logf("ff_study/{dataset}/{algorithm}/seed{seed}.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2> {log}"


rule ff_study_speed:
    output:
        csv=res("ff_study/speed.csv"),
        meta=res("ff_study/speed.meta.json"),
        txt=res("ff_study/speed.txt"),
    params:
        ff=lambda wc: ff_study_spec(FFS["bench_dataset"], "ff", FFS["seeds"][0]),
        bp=lambda wc: ff_study_spec(FFS["bench_dataset"], "bp", FFS["seeds"][0]),
    log:
        logf("ff_study/speed.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench ff-bench --ff-spec {params.ff:q} --bp-spec {params.bp:q} --repeats {FFS[bench_repeats]} "
        "--out {output.csv} > {output.txt} 2> {log}"


rule ff_study:
    localrule: True
    input:
        runs=expand(res("ff_study/{dataset}/{algorithm}/seed{seed}.csv"), dataset=FFS["datasets"],
                    algorithm=FFS["algorithms"], seed=FFS["seeds"]),
        bench=expand(res("ff_study/{dataset}/{algorithm}/seed{seed}.bench.tsv"), dataset=FFS["datasets"],
                     algorithm=FFS["algorithms"], seed=FFS["seeds"]),
        speed=res("ff_study/speed.csv"),
    output:
        csv=report(res("ff_study/ff_study.csv"), caption="../report/ff_study.rst", category="Forward-Forward baselines"),
        png=report(fig("ff_study.png"), caption="../report/ff_study.rst", category="Forward-Forward baselines"),
        pdf=fig("ff_study.pdf"),
    shell:
        "mfbench ff-study {input.runs} --speed {input.speed} --out {output.csv} --figure {output.png}"


ALL_TARGETS += rules.hinton_ff.output
ALL_TARGETS += rules.ff_study.output
EVIDENCE["hinton_ff"] = rules.hinton_ff.input
EVIDENCE["ff_study"] = rules.ff_study.input.runs
