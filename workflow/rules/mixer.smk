# Mono-Forward v2 (arXiv 2501.09238v2): "on MLP-Mixers MF gives stronger results on PathMNIST than backpropagation
# while requiring only 31 % of backpropagation's memory". BP and MF train the same Mixer (timm's, as a layer
# stack) over paired seeds, one job per (dataset, rule) training every seed in one process; the memory jobs
# measure the same net's training steps per seed (`memory-depth --seeds`, the memory experiment's meter), one
# process per rule, run alone. `mixer-table` tabulates both (run lists and specs: specs.smk).
rule pathmnist_mixer_run:
    output:
        csv=expand(res("pathmnist_mixer/{{dataset}}/{{algorithm}}/seed{seed}.csv"), seed=PMX["seeds"]),
        meta=expand(res("pathmnist_mixer/{{dataset}}/{{algorithm}}/seed{seed}.meta.json"), seed=PMX["seeds"]),
    log:
        logf("pathmnist_mixer/{dataset}/{algorithm}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="[^/]+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: pathmnist_mixer_spec(wc.dataset, wc.algorithm),
        seeds=" ".join(str(s) for s in PMX["seeds"]),
        out=lambda wc: res(f"pathmnist_mixer/{wc.dataset}/{wc.algorithm}/seed{{seed}}.csv"),
    shell:
        "mfbench train --spec {params.spec:q} --seeds {params.seeds} --out {params.out:q} 2>&1 | tee {log}"


rule pathmnist_mixer_memory:
    output:
        csv=res("pathmnist_mixer/memory/{dataset}/{algorithm}.csv"),
        meta=res("pathmnist_mixer/memory/{dataset}/{algorithm}.meta.json"),
    log:
        logf("pathmnist_mixer/memory/{dataset}/{algorithm}.log"),
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="[^/]+",
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        spec=lambda wc: pathmnist_mixer_spec(wc.dataset, wc.algorithm, "pathmnist_mixer_memory"),
        depth=lambda wc: json.loads(pathmnist_mixer_spec(wc.dataset, wc.algorithm))["depth"],
        seeds=" ".join(str(s) for s in PMX["seeds"]),
        warmup=PMX["memory"]["warmup_steps"],
        steps=PMX["memory"]["steps"],
    shell:
        "mfbench memory-depth --spec {params.spec:q} --depths {params.depth} --seeds {params.seeds}"
        " --warmup-steps {params.warmup} --steps {params.steps} --out {output.csv} 2>&1 | tee {log}"


rule pathmnist_mixer_table:
    input:
        runs=pathmnist_mixer_runs(),
        memory=pathmnist_mixer_memory_csvs(),
    output:
        csv=report(
            res("pathmnist_mixer/pathmnist_mixer.csv"),
            caption="../report/pathmnist_mixer.rst",
            category="Mono-Forward v2: MLP-Mixer",
        ),
        png=report(
            fig("pathmnist_mixer.png"), caption="../report/pathmnist_mixer.rst", category="Mono-Forward v2: MLP-Mixer"
        ),
        pdf=fig("pathmnist_mixer.pdf"),
    log:
        logf("pathmnist_mixer/table.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench mixer-table {input.runs} --memory {input.memory} --out {output.csv} --figure {output.png}"
        " 2>&1 | tee {log}"


ALL_TARGETS += rules.pathmnist_mixer_table.output
TABLES[rules.pathmnist_mixer_table.output.csv] = "Mono-Forward v2: MLP-Mixer"
EVIDENCE["pathmnist_mixer"] = pathmnist_mixer_runs()
EVIDENCE["pathmnist_mixer_memory"] = pathmnist_mixer_memory_csvs()
