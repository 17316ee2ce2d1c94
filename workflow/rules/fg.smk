# Forward gradient with local losses (Ren et al., arXiv 2210.03310): Table 3 on LocalMixer,
# the gradient-cosine figure (beyond the paper) and the step-time bench.
FG = config["fg"]
FG_CELLS = {c["name"]: c["run"] for c in FG["cells"]}
FG_METHODS = {m["name"]: m["run"] for m in FG["methods"]}


def fg_spec(cell, method, seed):
    """Run spec of one Table 3 cell (LocalMixer size, dataset) and method (rule + options)."""
    return run_spec("fg", experiment="fg", **FG_CELLS[cell], **FG_METHODS[method], seed=int(seed))


def fg_bench_spec(method):
    """The bench cell at the bench's batch size, gradient cosine off (it is not part of a step's cost)."""
    b = FG["bench"]
    spec = json.loads(run_spec("fg", experiment="fg_bench", **FG_CELLS[b["cell"]], **FG_METHODS[method],
                               seed=int(FG["seeds"][0]), batch_size=b["batch_size"]))
    spec["options"].pop("cosine_every", None)
    return json.dumps(spec, sort_keys=True)


def fg_cosine_methods():
    """Methods whose fg options record the gradient cosine (cosine_every > 0)."""
    return [m for m in FG_METHODS
            if json.loads(fg_spec(next(iter(FG_CELLS)), m, FG["seeds"][0]))["options"].get("cosine_every", 0) > 0]


rule fg_run:
    output:
        csv=res("fg/{cell}/{method}/seed{seed}.csv"),
        meta=res("fg/{cell}/{method}/seed{seed}.meta.json"),
    wildcard_constraints:
        cell="[^/]+",
        method="[^/]+",
    params:
        spec=lambda wc: fg_spec(wc.cell, wc.method, wc.seed),
    log:
        logf("fg/{cell}/{method}/seed{seed}.log"),
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    shell:
        "mfbench train --spec '{params.spec}' --out {output.csv} 2> {log}"


def fg_runs():
    return expand(res("fg/{cell}/{method}/seed{seed}.csv"), cell=FG_CELLS, method=FG_METHODS, seed=FG["seeds"])


rule fg_table:
    localrule: True
    input:
        fg_runs(),
    output:
        csv=report(res("fg/fg_table.csv"), caption="../report/fg_table.rst", category="Forward gradient (Ren et al.)"),
        png=report(fig("fg_table.png"), caption="../report/fg_table.rst", category="Forward gradient (Ren et al.)"),
        pdf=fig("fg_table.pdf"),
    params:
        selection=FG.get("selection", "last"),
    shell:
        "mfbench fg-table {input} --out {output.csv} --figure {output.png} --selection {params.selection}"


rule fg_cosine:
    localrule: True
    input:
        expand(res("fg/{cell}/{method}/seed{seed}.csv"), cell=FG_CELLS, method=fg_cosine_methods(),
               seed=FG["seeds"]),
    output:
        csv=report(res("fg/fg_cosine.csv"), caption="../report/fg_cosine.rst", category="Forward gradient (Ren et al.)"),
        png=report(fig("fg_cosine.png"), caption="../report/fg_cosine.rst", category="Forward gradient (Ren et al.)"),
        pdf=fig("fg_cosine.pdf"),
    shell:
        "mfbench fg-cosine {input} --out {output.csv} --figure {output.png}"


rule fg_bench:
    output:
        csv=res("fg/bench.csv"),
        meta=res("fg/bench.meta.json"),
        txt=report(res("fg/bench.txt"), caption="../report/fg_bench.rst", category="Forward gradient (Ren et al.)"),
    params:
        bp=lambda wc: fg_bench_spec("bp"),
        specs=lambda wc: " ".join(f"--spec '{fg_bench_spec(m)}'" for m in FG["bench"].get("methods", ["fg-a", "lg-fg-a", "fa", "dfa"])),
        steps=FG["bench"]["steps"],
        repeats=FG["bench"]["repeats"],
    log:
        logf("fg/bench.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,
    shell:
        "mfbench fg-bench --bp-spec '{params.bp}' {params.specs} --steps {params.steps} --repeats {params.repeats} "
        "--out {output.csv} > {output.txt} 2> {log}"


ALL_TARGETS += rules.fg_table.output
EVIDENCE["fg"] = fg_runs()
ALL_TARGETS += rules.fg_cosine.output
ALL_TARGETS += rules.fg_bench.output
