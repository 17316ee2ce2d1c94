# Fig. 1/2: memory over training steps, BP vs MF (5x2000 MLP, MNIST, batch 30000), one trace per seed (the
# "more evenly" claim pairs them by seed); the figure draws the first seed's.
# Fig. 3a/3b: peak training memory vs depth (MLP of 1000-unit layers, full batch; CNN, CIFAR-10, batch 256),
# with fitted MB-per-layer slopes and the paper's beside them.
# One job per (figure, rule): a depth sweep runs in one process, a fresh model per depth and memory freed
# between depths, so a depth that runs out of memory is a row (status oom) and the sweep goes on; one
# process per rule keeps the rules' allocator and NVML measurements apart.


rule memory_trace:
    output:
        csv=res("memory/trace/{algorithm}/seed{seed}.csv"),
        meta=res("memory/trace/{algorithm}/seed{seed}.meta.json"),
    log:
        logf("memory/trace/{algorithm}/seed{seed}.log"),
    wildcard_constraints:
        algorithm="[^/]+",
        seed=r"\d+",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        spec=lambda wc: memory_spec("trace", wc.algorithm, wc.seed),
        steps=MEM["trace"]["steps"],
    shell:
        "mfbench memory-trace --spec {params.spec:q} --steps {params.steps} --out {output.csv} 2>&1 | tee {log}"


rule memory_depth:
    output:
        csv=res("memory/depth/{arch}/{algorithm}.csv"),
        meta=res("memory/depth/{arch}/{algorithm}.meta.json"),
    log:
        logf("memory/depth/{arch}/{algorithm}.log"),
    wildcard_constraints:
        arch="mlp|cnn",
        algorithm="[^/]+",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        spec=lambda wc: memory_spec(wc.arch, wc.algorithm),
        depths=lambda wc: " ".join(map(str, MEM_DEPTHS[wc.arch])),
        full=lambda wc: "--full-batch" if MEM[wc.arch].get("full_batch", False) else "",
        warmup=lambda wc: MEM[wc.arch].get("warmup_steps", 1),
        steps=lambda wc: MEM[wc.arch]["steps"],
    shell:
        "mfbench memory-depth --spec {params.spec:q} --depths {params.depths} {params.full}"
        " --warmup-steps {params.warmup} --steps {params.steps} --out {output.csv} 2>&1 | tee {log}"


rule memory_slopes:
    input:
        memory_depth_csvs("mlp") + memory_depth_csvs("cnn"),
    output:
        report(res("memory/slopes.csv"), caption="../report/fig3_slopes.rst", category="Memory (Fig. 1-3)"),
    log:
        logf("memory/slopes.log"),
    localrule: True
    conda:
        ENV
    params:
        megabyte=MEM.get("megabyte", 1000000),
        metric=MEM.get("compare_metric", "peak_allocated_bytes"),
    shell:
        "mfbench memory-slopes {input} --megabyte {params.megabyte} --compare-metric {params.metric}"
        " --out {output} 2>&1 | tee {log}"


rule memory_fig1_2:
    input:
        memory_trace_csvs(MEM["trace"]["seeds"][:1]),  # one trace per rule drawn: the first seed's
    output:
        png=report(
            fig("fig1_2_memory_trace.png"), caption="../report/fig1_2_memory_trace.rst", category="Memory (Fig. 1-3)"
        ),
        pdf=fig("fig1_2_memory_trace.pdf"),
    log:
        logf("memory/fig1_2.log"),
    localrule: True
    conda:
        ENV
    params:
        megabyte=MEM.get("megabyte", 1000000),
    shell:
        "mfbench memory-plot-trace {input} --megabyte {params.megabyte} --out {output.png} 2>&1 | tee {log}"


rule memory_fig3a:
    input:
        depths=memory_depth_csvs("mlp"),
        slopes=rules.memory_slopes.output,
    output:
        png=report(
            fig("fig3a_memory_depth_mlp.png"),
            caption="../report/fig3a_memory_depth_mlp.rst",
            category="Memory (Fig. 1-3)",
        ),
        pdf=fig("fig3a_memory_depth_mlp.pdf"),
    log:
        logf("memory/fig3a.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench memory-plot-depth {input.depths} --slopes {input.slopes} --out {output.png} 2>&1 | tee {log}"


rule memory_fig3b:
    input:
        depths=memory_depth_csvs("cnn"),
        slopes=rules.memory_slopes.output,
    output:
        png=report(
            fig("fig3b_memory_depth_cnn.png"),
            caption="../report/fig3b_memory_depth_cnn.rst",
            category="Memory (Fig. 1-3)",
        ),
        pdf=fig("fig3b_memory_depth_cnn.pdf"),
    log:
        logf("memory/fig3b.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench memory-plot-depth {input.depths} --slopes {input.slopes} --out {output.png} 2>&1 | tee {log}"


ALL_TARGETS += [
    *rules.memory_fig1_2.output,
    *rules.memory_fig3a.output,
    *rules.memory_fig3b.output,
    *rules.memory_slopes.output,
]
TABLES[rules.memory_slopes.output[0]] = "Memory (Fig. 1-3)"
EVIDENCE["memory"] = [*rules.memory_slopes.output, *memory_trace_csvs()]  # slopes (Fig. 3), traces (Fig. 1/2)
