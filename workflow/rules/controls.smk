# Controls the claims need (issue 7): each its own `experiment` label, with the SAME seeds and
# otherwise identical run specs as the runs it controls, so the ledger pairs them by seed.
#   fig5_he                 Fig. 5 again, hidden layers He-initialised (run key init: he)
#   table3_frozen_m         MF on Table 3's MLP cells with every projection M_i frozen at init
#   mf_schedule_matched     greedy vs simultaneous MF at matched passes (the re-evaluation's protocol B)
#   mf_schedule_converged   the same, each schedule early-stopped on validation (protocol A)
CTL = config["controls"]


def with_keys(spec, options=None, **keys):
    """A JSON run spec with some run keys and rule options changed, everything else as given."""
    s = json.loads(spec)
    s.update(keys)
    s["options"] = {**s["options"], **(options or {})}
    return json.dumps(s, sort_keys=True)


# --- Fig. 5 with He init ----------------------------------------------------------------------
def fig5_he_runs():
    if not CTL["fig5_he"]["enabled"]:
        return []
    return [res(f"fig5_he/{d}/depth{n}/{alg}/seed{s}.csv") for d in F5["datasets"] for n in F5["depths"]
            for alg in F5["algorithms"] for s in F5["seeds"]]


rule fig5_he_run:
    output:
        csv=res("fig5_he/{dataset}/depth{depth}/{algorithm}/seed{seed}.csv"),
        meta=res("fig5_he/{dataset}/depth{depth}/{algorithm}/seed{seed}.meta.json"),
    wildcard_constraints:
        dataset="[^/]+",
        algorithm="[^/]+",
        depth=r"\d+",
        seed=r"\d+",
    params:
        spec=lambda wc: run_spec("fig5", experiment="fig5_he", dataset=wc.dataset, depth=int(wc.depth),
                                 algorithm=wc.algorithm, seed=int(wc.seed), init="he"),
    log:
        logf("fig5_he/{dataset}/depth{depth}/{algorithm}/seed{seed}.log"),
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    shell:
        "mfbench train --spec '{params.spec}' --out {output.csv} 2> {log}"


rule fig5_he_summary:
    input:
        fig5_he_runs(),
    output:
        curves=res("fig5_he/fig5_he_summary.csv"),
        target=res("fig5_he/fig5_he_epochs_to_target.csv"),
        target_runs=res("fig5_he/fig5_he_epochs_to_target_runs.csv"),
    params:
        targets=" ".join(f"--target {d}={v}" for d, v in F5["target"]["accuracy"].items()),
        split=F5.get("split", "test"),
        target_split=F5["target"].get("split", "val"),
    shell:
        "mfbench fig5-summary {input} --split {params.split} {params.targets} --target-split {params.target_split}"
        " --out {output.curves} --target-out {output.target} --target-runs-out {output.target_runs}"


# Epochs to target: default init (fig5, solid) beside He init (fig5_he, dashed), one panel per dataset.
rule fig5_he:
    input:
        curves=rules.fig5_he_summary.output.curves,
        default=rules.fig5_summary.output.target,
        he=rules.fig5_he_summary.output.target,
    output:
        png=report(fig("fig5_he_convergence_depth.png"), caption="../report/fig5_he.rst", category="Controls"),
        pdf=fig("fig5_he_convergence_depth.pdf"),
        target_png=report(fig("fig5_he_epochs_to_target.png"), caption="../report/fig5_he.rst", category="Controls"),
        target_pdf=fig("fig5_he_epochs_to_target.pdf"),
    shell:
        "mfbench fig5-figure {input.curves} {input.default} {input.he} --out {output.png}"
        " --target-out {output.target_png}"


# --- Table 3's MLP cells with the projections frozen ------------------------------------------------
def frozen_m_cells():
    if not CTL["table3_frozen_m"]["enabled"] or "mlp" not in T3["archs"] or "mf" not in T3["algorithms"]:
        return []
    return [d for d in T3["datasets"]
            if not any(_matches(x, {"dataset": d, "arch": "mlp", "algorithm": "mf"}) for x in T3.get("exclude", []))]


def frozen_m_runs():
    return [res(f"table3_frozen_m/{d}/seed{s}.csv") for d in frozen_m_cells() for s in T3["seeds"]]


rule table3_frozen_m_run:
    output:
        csv=res("table3_frozen_m/{dataset}/seed{seed}.csv"),
        meta=res("table3_frozen_m/{dataset}/seed{seed}.meta.json"),
    wildcard_constraints:
        dataset="[^/]+",
        seed=r"\d+",
    params:
        spec=lambda wc: with_keys(run_spec("table3", experiment="table3_frozen_m", dataset=wc.dataset, arch="mlp",
                                           algorithm="mf", seed=int(wc.seed)), {"learn_projection": False}),
    log:
        logf("table3_frozen_m/{dataset}/seed{seed}.log"),
    threads: TRAIN_THREADS
    resources:
        **TRAIN_RES,
    shell:
        "mfbench train --spec '{params.spec}' --out {output.csv} 2> {log}"


rule table3_frozen_m:
    input:
        learned=[res(f"table3/{d}/mlp/mf/seed{s}.csv") for d in frozen_m_cells() for s in T3["seeds"]],
        frozen=frozen_m_runs(),
    output:
        csv=report(res("table3_frozen_m/summary.csv"), caption="../report/table3_frozen_m.rst", category="Controls"),
        png=report(fig("table3_frozen_m.png"), caption="../report/table3_frozen_m.rst", category="Controls"),
        pdf=fig("table3_frozen_m.pdf"),
    shell:
        "mfbench controls-summary {input.learned} {input.frozen} --out {output.csv} --figure {output.png}"
        " --title 'MF with learned vs frozen projections M_i (Table 3 MLPs)'"


# --- greedy vs simultaneous MF: matched passes (B) and own convergence (A) ------------------------
MFS = CTL["mf_schedule"]
SCHEDULE_PROTOCOLS = ("matched", "converged")


def mf_schedule_spec(protocol, dataset, schedule, seed):
    """Table 3's MLP run of the dataset as MF with the schedule, under the protocol's budget."""
    base = run_spec("table3", experiment=f"mf_schedule_{protocol}", dataset=dataset, arch="mlp", algorithm="mf",
                    schedule=schedule, seed=int(seed))
    if protocol == "matched":
        m = MFS["matched"]
        depth = json.loads(base)["depth"]
        scale = depth if (schedule == "simultaneous" and m["match"] == "total") else 1
        return with_keys(base, epochs=m["epochs"] * scale, patience=0)
    c = MFS["converged"]
    return with_keys(base, epochs=c["max_epochs"], patience=c["patience"], val_fraction=c["val_fraction"])


def mf_schedule_runs(protocol):
    if not MFS["enabled"]:
        return []
    return [res(f"mf_schedule/{protocol}/{d}/{sch}/seed{s}.csv") for d in MFS["datasets"]
            for sch in ("greedy", "simultaneous") for s in MFS["seeds"]]


rule mf_schedule_run:
    output:
        csv=res("mf_schedule/{protocol}/{dataset}/{schedule}/seed{seed}.csv"),
        meta=res("mf_schedule/{protocol}/{dataset}/{schedule}/seed{seed}.meta.json"),
    wildcard_constraints:
        protocol="|".join(SCHEDULE_PROTOCOLS),
        dataset="[^/]+",
        schedule="greedy|simultaneous",
        seed=r"\d+",
    params:
        spec=lambda wc: mf_schedule_spec(wc.protocol, wc.dataset, wc.schedule, wc.seed),
    log:
        logf("mf_schedule/{protocol}/{dataset}/{schedule}/seed{seed}.log"),
    threads: MEASURE_THREADS
    resources:
        **MEASURE_RES,  # its summary reports energy per run (NVML counter of the whole GPU): alone, or others' joules count
    shell:
        "mfbench train --spec '{params.spec}' --out {output.csv} 2> {log}"


rule mf_schedule:
    input:
        [r for p in SCHEDULE_PROTOCOLS for r in mf_schedule_runs(p)],
    output:
        csv=report(res("mf_schedule/summary.csv"), caption="../report/mf_schedule.rst", category="Controls"),
        png=report(fig("mf_schedule.png"), caption="../report/mf_schedule.rst", category="Controls"),
        pdf=fig("mf_schedule.pdf"),
    shell:
        "mfbench controls-summary {input} --out {output.csv} --figure {output.png}"
        " --title 'MF greedy vs simultaneous: matched passes (B) and own convergence (A)'"


if CTL["fig5_he"]["enabled"]:
    ALL_TARGETS += [*rules.fig5_he_summary.output, *rules.fig5_he.output]
    EVIDENCE["fig5_he"] = [rules.fig5_he_summary.output.target_runs]
if frozen_m_cells():
    ALL_TARGETS += rules.table3_frozen_m.output
    EVIDENCE["table3_frozen_m"] = frozen_m_runs()
if MFS["enabled"]:
    ALL_TARGETS += rules.mf_schedule.output
    for p in SCHEDULE_PROTOCOLS:
        EVIDENCE[f"mf_schedule_{p}"] = mf_schedule_runs(p)
