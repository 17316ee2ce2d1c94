# Forward gradient with local losses (Ren et al., arXiv 2210.03310): Table 3 on LocalMixer,
# the gradient-cosine figure (beyond the paper) and the step-time bench. Run lists and specs: specs.smk.
rule fg_run:
    output:
        csv=res("fg/{cell}/{method}/seed{seed}.csv"),
        meta=res("fg/{cell}/{method}/seed{seed}.meta.json"),
    log:
        logf("fg/{cell}/{method}/seed{seed}.log"),
    wildcard_constraints:
        cell="[^/]+",
        method="[^/]+",
    conda:
        ENV
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    params:
        spec=lambda wc: fg_spec(wc.cell, wc.method, wc.seed),
    shell:
        "mfbench train --spec {params.spec:q} --out {output.csv} 2>&1 | tee {log}"


rule fg_table:
    input:
        fg_runs(),
    output:
        csv=report(res("fg/fg_table.csv"), caption="../report/fg_table.rst", category="Forward gradient (Ren et al.)"),
        png=report(fig("fg_table.png"), caption="../report/fg_table.rst", category="Forward gradient (Ren et al.)"),
        pdf=fig("fg_table.pdf"),
    log:
        logf("fg/fg_table.log"),
    localrule: True
    conda:
        ENV
    params:
        selection=FG.get("selection", "last"),
    shell:
        "mfbench fg-table {input} --out {output.csv} --figure {output.png} --selection {params.selection}"
        " 2>&1 | tee {log}"


rule fg_cosine:
    input:
        expand(res("fg/{cell}/{method}/seed{seed}.csv"), cell=FG_CELLS, method=fg_cosine_methods(), seed=FG["seeds"]),
    output:
        csv=report(res("fg/fg_cosine.csv"), caption="../report/fg_cosine.rst", category="Forward gradient (Ren et al.)"),
        png=report(fig("fg_cosine.png"), caption="../report/fg_cosine.rst", category="Forward gradient (Ren et al.)"),
        pdf=fig("fg_cosine.pdf"),
    log:
        logf("fg/fg_cosine.log"),
    localrule: True
    conda:
        ENV
    shell:
        "mfbench fg-cosine {input} --out {output.csv} --figure {output.png} 2>&1 | tee {log}"


rule fg_bench:
    output:
        csv=res("fg/bench.csv"),
        meta=res("fg/bench.meta.json"),
        txt=report(res("fg/bench.txt"), caption="../report/fg_bench.rst", category="Forward gradient (Ren et al.)"),
    log:
        logf("fg/bench.log"),
    conda:
        ENV
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    params:
        bp=lambda wc: fg_bench_spec("bp"),
        specs=lambda wc: fg_bench_specs(),
        steps=FG["bench"]["steps"],
        repeats=FG["bench"]["repeats"],
    shell:
        "mfbench fg-bench --bp-spec {params.bp:q} {params.specs} --steps {params.steps} --repeats {params.repeats} "
        "--out {output.csv} 2>&1 > {output.txt} | tee {log}"


ALL_TARGETS += rules.fg_table.output
TABLES[rules.fg_table.output.csv] = "Forward gradient (Ren et al.)"
EVIDENCE["fg"] = fg_runs()
ALL_TARGETS += rules.fg_cosine.output
ALL_TARGETS += rules.fg_bench.output
