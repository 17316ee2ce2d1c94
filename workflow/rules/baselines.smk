# Forward-Forward baselines: Hinton's MNIST setup and the FF-vs-backprop study.
HFF = config["hinton_ff"]
FFS = config["ff_study"]


rule hinton_ff_run:
    output:
        csv="results/hinton_ff/{dataset}/seed{seed}.csv",
        meta="results/hinton_ff/{dataset}/seed{seed}.meta.json",
    wildcard_constraints:
        dataset="[^/]+",
    params:
        spec=lambda wc: run_spec("hinton_ff", experiment="hinton_ff", dataset=wc.dataset, seed=int(wc.seed)),
    log:
        "logs/hinton_ff/{dataset}/seed{seed}.log",
    resources:
        gpu=1,
    shell:
        "mfbench train --spec '{params.spec}' --out {output.csv} 2> {log}"


rule hinton_ff:
    input:
        expand("results/hinton_ff/{dataset}/seed{seed}.csv", dataset=HFF["datasets"], seed=HFF["seeds"]),
    output:
        csv=report("results/hinton_ff/hinton_ff.csv", caption="../report/ff_hinton.rst", category="Forward-Forward baselines"),
        png=report("figures/hinton_ff.png", caption="../report/ff_hinton.rst", category="Forward-Forward baselines"),
        pdf="figures/hinton_ff.pdf",
    shell:
        "mfbench ff-hinton {input} --out {output.csv} --figure {output.png}"


def ff_study_spec(dataset, algorithm, seed):
    return run_spec("ff_study", experiment="ff_study", dataset=dataset, algorithm=algorithm, seed=int(seed))


# The benchmark file is the job's process wall time: the study's end-to-end time.
rule ff_study_run:
    output:
        csv="results/ff_study/{dataset}/{algorithm}/seed{seed}.csv",
        meta="results/ff_study/{dataset}/{algorithm}/seed{seed}.meta.json",
    benchmark:
        "results/ff_study/{dataset}/{algorithm}/seed{seed}.bench.tsv"
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="ff|bp",
    params:
        spec=lambda wc: ff_study_spec(wc.dataset, wc.algorithm, wc.seed),
    log:
        "logs/ff_study/{dataset}/{algorithm}/seed{seed}.log",
    resources:
        gpu=1,
    shell:
        "mfbench train --spec '{params.spec}' --out {output.csv} 2> {log}"


rule ff_study_speed:
    output:
        csv="results/ff_study/speed.csv",
        meta="results/ff_study/speed.meta.json",
        txt="results/ff_study/speed.txt",
    params:
        ff=lambda wc: ff_study_spec(FFS["bench_dataset"], "ff", FFS["seeds"][0]),
        bp=lambda wc: ff_study_spec(FFS["bench_dataset"], "bp", FFS["seeds"][0]),
    log:
        "logs/ff_study/speed.log",
    resources:
        gpu=1,
    shell:
        "mfbench ff-bench --ff-spec '{params.ff}' --bp-spec '{params.bp}' --repeats {FFS[bench_repeats]} "
        "--out {output.csv} > {output.txt} 2> {log}"


rule ff_study:
    input:
        runs=expand("results/ff_study/{dataset}/{algorithm}/seed{seed}.csv", dataset=FFS["datasets"],
                    algorithm=FFS["algorithms"], seed=FFS["seeds"]),
        bench=expand("results/ff_study/{dataset}/{algorithm}/seed{seed}.bench.tsv", dataset=FFS["datasets"],
                     algorithm=FFS["algorithms"], seed=FFS["seeds"]),
        speed="results/ff_study/speed.csv",
    output:
        csv=report("results/ff_study/ff_study.csv", caption="../report/ff_study.rst", category="Forward-Forward baselines"),
        png=report("figures/ff_study.png", caption="../report/ff_study.rst", category="Forward-Forward baselines"),
        pdf="figures/ff_study.pdf",
    shell:
        "mfbench ff-study {input.runs} --speed {input.speed} --out {output.csv} --figure {output.png}"


ALL_TARGETS += rules.hinton_ff.output
ALL_TARGETS += rules.ff_study.output
