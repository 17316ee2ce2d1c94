# Fig. 1/2: memory over training steps, BP vs MF (5x2000 MLP, MNIST, batch 30000).
# Fig. 3a/3b: peak training memory vs depth (MLP of 1000-unit layers, full batch; CNN, CIFAR-10, batch 256),
# with fitted MB-per-layer slopes and the paper's beside them.
# One job per (figure, rule): a depth sweep runs in one process, a fresh model per depth and memory freed
# between depths, so a depth that runs out of memory is a row (status oom) and the sweep goes on; one
# process per rule keeps the rules' allocator and NVML measurements apart.
MEM = config["memory"]
MEM_DEPTHS = {"mlp": list(range(1, MEM["mlp"]["max_depth"] + 1)),
              "cnn": list(range(1, len(MEM["cnn"]["channels"]) + 1))}


def memory_spec(kind, algorithm):
    if kind == "trace":
        t = MEM["trace"]
        values = dict(experiment="fig1_2", arch="mlp", dataset=t["dataset"], depth=t["depth"], width=t["width"],
                      batch_size=t["batch_size"])
    elif kind == "mlp":
        m = MEM["mlp"]
        values = dict(experiment="fig3a", arch="mlp", dataset=m["dataset"], width=m["width"],
                      batch_size=m.get("batch_size", 256))
    else:
        c = MEM["cnn"]
        values = dict(experiment="fig3b", arch="cnn", dataset=c["dataset"], channels=c["channels"],
                      batch_size=c["batch_size"])
    return run_spec("memory", algorithm=algorithm, **values)


def memory_depth_csvs(arch):
    return [res(f"memory/depth/{arch}/{alg}.csv") for alg in MEM["algorithms"]]


rule memory_trace:
    output:
        csv=res("memory/trace/{algorithm}.csv"),
        meta=res("memory/trace/{algorithm}.meta.json"),
    wildcard_constraints:
        algorithm="[^/]+",
    params:
        spec=lambda wc: memory_spec("trace", wc.algorithm),
        steps=MEM["trace"]["steps"],
    log:
        logf("memory/trace/{algorithm}.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench memory-trace --spec {params.spec:q} --steps {params.steps} --out {output.csv} 2> {log}"


rule memory_depth:
    output:
        csv=res("memory/depth/{arch}/{algorithm}.csv"),
        meta=res("memory/depth/{arch}/{algorithm}.meta.json"),
    wildcard_constraints:
        arch="mlp|cnn",
        algorithm="[^/]+",
    params:
        spec=lambda wc: memory_spec(wc.arch, wc.algorithm),
        depths=lambda wc: " ".join(map(str, MEM_DEPTHS[wc.arch])),
        full=lambda wc: "--full-batch" if MEM[wc.arch].get("full_batch", False) else "",
        warmup=lambda wc: MEM[wc.arch].get("warmup_steps", 1),
        steps=lambda wc: MEM[wc.arch]["steps"],
    log:
        logf("memory/depth/{arch}/{algorithm}.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench memory-depth --spec {params.spec:q} --depths {params.depths} {params.full}"
        " --warmup-steps {params.warmup} --steps {params.steps} --out {output.csv} 2> {log}"


rule memory_slopes:
    localrule: True
    input:
        memory_depth_csvs("mlp") + memory_depth_csvs("cnn"),
    output:
        report(res("memory/slopes.csv"), caption="../report/fig3_slopes.rst", category="Memory (Fig. 1-3)"),
    params:
        megabyte=MEM.get("megabyte", 1000000),
        metric=MEM.get("compare_metric", "peak_allocated_bytes"),
    log:
        logf("memory/slopes.log"),
    shell:
        "mfbench memory-slopes {input} --megabyte {params.megabyte} --compare-metric {params.metric}"
        " --out {output} 2> {log}"


rule memory_fig1_2:
    localrule: True
    input:
        [res(f"memory/trace/{alg}.csv") for alg in MEM["algorithms"]],
    output:
        png=report(fig("fig1_2_memory_trace.png"), caption="../report/fig1_2_memory_trace.rst",
                   category="Memory (Fig. 1-3)"),
        pdf=fig("fig1_2_memory_trace.pdf"),
    params:
        megabyte=MEM.get("megabyte", 1000000),
    shell:
        "mfbench memory-plot-trace {input} --megabyte {params.megabyte} --out {output.png}"


rule memory_fig3a:
    localrule: True
    input:
        depths=memory_depth_csvs("mlp"),
        slopes=rules.memory_slopes.output,
    output:
        png=report(fig("fig3a_memory_depth_mlp.png"), caption="../report/fig3a_memory_depth_mlp.rst",
                   category="Memory (Fig. 1-3)"),
        pdf=fig("fig3a_memory_depth_mlp.pdf"),
    shell:
        "mfbench memory-plot-depth {input.depths} --slopes {input.slopes} --out {output.png}"


rule memory_fig3b:
    localrule: True
    input:
        depths=memory_depth_csvs("cnn"),
        slopes=rules.memory_slopes.output,
    output:
        png=report(fig("fig3b_memory_depth_cnn.png"), caption="../report/fig3b_memory_depth_cnn.rst",
                   category="Memory (Fig. 1-3)"),
        pdf=fig("fig3b_memory_depth_cnn.pdf"),
    shell:
        "mfbench memory-plot-depth {input.depths} --slopes {input.slopes} --out {output.png}"


ALL_TARGETS += [*rules.memory_fig1_2.output, *rules.memory_fig3a.output, *rules.memory_fig3b.output,
                *rules.memory_slopes.output]
EVIDENCE["memory"] = rules.memory_slopes.output
