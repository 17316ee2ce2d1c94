# The artefacts' run lists and run specs, one section per rules file. Functions live here and in
# common.smk only (`snakemake --lint`: rules files hold rules and their targets).
from mfbench.experiments import tuning as _tuning

# --- Table 3 and its tuned protocol (accuracy.smk) ---
T3 = config["table3"]
TUNE = T3["tuned"]
# A search that cannot be fair (zero trials, a log bound <= 0, tuning seeds among the evaluation seeds,
# an undeclared or unknown primary mode) stops here, before any job, in one line naming the key.
_tuning.check_tuned("table3.tuned", TUNE, T3["seeds"], TUNE.get("algorithms", []))


def table3_runs():
    """Every (dataset, arch, algorithm, seed) of the grid, minus `exclude` matches."""
    out = []
    for d in T3["datasets"]:
        for a in T3["archs"]:
            for alg in T3["algorithms"]:
                job = {"dataset": d, "arch": a, "algorithm": alg}
                if any(_matches(x, job) for x in T3.get("exclude", [])):
                    continue
                out += [res(f"table3/{d}/{a}/{alg}/seed{s}.csv") for s in T3["seeds"]]
    return out


def table3_spec(wc, seed):
    """Table 3's run spec for the cell (wildcards dataset, arch, algorithm) and `seed`."""
    return run_spec("table3", experiment="table3", dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm, seed=seed)


def tuned_cells():
    return [
        (d, a, alg)
        for d in T3["datasets"]
        for a in T3["archs"]
        for alg in TUNE["algorithms"]
        if not any(_matches(x, {"dataset": d, "arch": a, "algorithm": alg}) for x in T3.get("exclude", []))
    ]


def tune_spec(wc, **values):
    """Table 3's spec for the cell, under the tuned protocol's optimiser, lr schedule, validation split and
    early stopping."""
    return run_spec(
        "table3",
        dataset=wc.dataset,
        arch=wc.arch,
        algorithm=wc.algorithm,
        optimizer=TUNE["optimizer"],
        lr_schedule=TUNE["lr_schedule"],
        val_fraction=TUNE["val_fraction"],
        patience=TUNE["patience"],
        stop_mode=TUNE["primary_mode"][wc.algorithm],  # early stopping watches the mode the rule is scored on
        **values,
    )


def study_trials(study, tuned):
    """The study's trial points (tuning.trials: quasi-random, seeded by a hash of the study's name)."""
    return _tuning.trials(study, tuned["search"], tuned["trials"], tuned["sequence"])


def tune_trial_spec(wc):
    point = study_trials(f"table3/{wc.dataset}/{wc.arch}/{wc.algorithm}", TUNE)[int(wc.trial)]
    return tune_spec(wc, experiment="table3_tune", **point)


def trial_outputs(prefix, tuned, ext):
    """One trial job's outputs: a run per tuning seed (`mfbench train --seeds`)."""
    keep = prefix.replace("{", "{{").replace("}", "}}")  # the rule's own wildcards pass through expand
    return expand(f"{keep}/t{{{{trial}}}}/seed{{seed}}{ext}", seed=tuned["select_seeds"])


def trial_runs(prefix, tuned):
    return [f"{prefix}/t{t}/seed{s}.csv" for t in range(tuned["trials"]) for s in tuned["select_seeds"]]


def tune_trial_runs(wc):
    return trial_runs(res(f"table3_tuned/trials/{wc.dataset}/{wc.arch}/{wc.algorithm}"), TUNE)


def seeds_arg(tuned):
    return " ".join(str(s) for s in tuned["select_seeds"])


def table3_tuned_runs():
    if not TUNE["enabled"]:
        return []
    return [res(f"table3_tuned/{d}/{a}/{alg}/seed{s}.csv") for d, a, alg in tuned_cells() for s in T3["seeds"]]


# --- Forward-Forward baselines (baselines.smk) ---
HFF = config["hinton_ff"]
FFS = config["ff_study"]


def ff_study_spec(dataset, algorithm, seed):
    return run_spec("ff_study", experiment="ff_study", dataset=dataset, algorithm=algorithm, seed=int(seed))


# --- Fig. 4 and Fig. 5 (convergence.smk) ---
F4 = config["fig4"]
F5 = config["fig5"]


def fig4_runs():
    return [res(f"fig4/{d}/{alg}/seed{s}.csv") for d in F4["datasets"] for alg in F4["algorithms"] for s in F4["seeds"]]


def fig5_runs():
    return [
        res(f"fig5/{d}/depth{n}/{alg}/seed{s}.csv")
        for d in F5["datasets"]
        for n in F5["depths"]
        for alg in F5["algorithms"]
        for s in F5["seeds"]
    ]


# --- memory (memory.smk) ---
MEM = config["memory"]
MEM_DEPTHS = {
    "mlp": list(range(1, MEM["mlp"]["max_depth"] + 1)),
    "cnn": list(range(1, len(MEM["cnn"]["channels"]) + 1)),
}


def memory_spec(kind, algorithm, seed=None):
    if kind == "trace":
        t = MEM["trace"]
        values = dict(
            experiment="fig1_2",
            seed=int(seed),
            arch="mlp",
            dataset=t["dataset"],
            depth=t["depth"],
            width=t["width"],
            batch_size=t["batch_size"],
        )
    elif kind == "mlp":
        m = MEM["mlp"]
        values = dict(
            experiment="fig3a",
            arch="mlp",
            dataset=m["dataset"],
            width=m["width"],
            batch_size=m.get("batch_size", 256),
        )
    else:
        c = MEM["cnn"]
        values = dict(
            experiment="fig3b",
            arch="cnn",
            dataset=c["dataset"],
            channels=c["channels"],
            batch_size=c["batch_size"],
        )
    return run_spec("memory", algorithm=algorithm, **values)


def memory_trace_csvs(seeds=None):
    """Fig. 1/2 traces, one per learning rule and seed (by default every configured seed)."""
    return [res(f"memory/trace/{alg}/seed{s}.csv") for alg in MEM["algorithms"] for s in seeds or MEM["trace"]["seeds"]]


def memory_depth_csvs(arch):
    return [res(f"memory/depth/{arch}/{alg}.csv") for alg in MEM["algorithms"]]


# --- Table 4 and Table 5 (timing.smk) ---
LAT = config["latency"]
T5 = config["table5"]


def latency_specs(wc):
    """One `--spec` per rule: each rule's Table 3 run spec for this dataset and model family."""
    seed = T3["seeds"][0]  # untrained weights: the seed changes no timing
    return " ".join(
        "--spec "
        + shlex.quote(  # quoted: a data_dir may hold an apostrophe
            run_spec("table3", experiment="table4", dataset=wc.dataset, arch=wc.arch, algorithm=alg, seed=seed)
        )
        for alg in LAT["algorithms"]
    )


def table5_runs():
    return expand(
        res("table5/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        dataset=T5["datasets"],
        arch=T5["archs"],
        algorithm=T5["algorithms"],
        seed=T5["seeds"],
    )


# --- controls (controls.smk): each its own `experiment` label, same seeds and specs as what it controls ---
CTL = config["controls"]
MFS = CTL["mf_schedule"]
SCHEDULE_PROTOCOLS = ("matched", "converged")


def with_keys(spec, options=None, **keys):
    """A JSON run spec with some run keys and rule options changed, everything else as given."""
    s = json.loads(spec)
    s.update(keys)
    s["options"] = {**s["options"], **(options or {})}
    return json.dumps(s, sort_keys=True)


def fig5_he_runs():
    if not CTL["fig5_he"]["enabled"]:
        return []
    return [
        res(f"fig5_he/{d}/depth{n}/{alg}/seed{s}.csv")
        for d in F5["datasets"]
        for n in F5["depths"]
        for alg in F5["algorithms"]
        for s in F5["seeds"]
    ]


def frozen_m_cells():
    if not CTL["table3_frozen_m"]["enabled"] or "mlp" not in T3["archs"] or "mf" not in T3["algorithms"]:
        return []
    return [
        d
        for d in T3["datasets"]
        if not any(_matches(x, {"dataset": d, "arch": "mlp", "algorithm": "mf"}) for x in T3.get("exclude", []))
    ]


def frozen_m_runs():
    return [res(f"table3_frozen_m/{d}/seed{s}.csv") for d in frozen_m_cells() for s in T3["seeds"]]


def mf_schedule_spec(protocol, dataset, schedule, seed):
    """Table 3's MLP run of the dataset as MF with the schedule, under the protocol's budget."""
    base = run_spec(
        "table3",
        experiment=f"mf_schedule_{protocol}",
        dataset=dataset,
        arch="mlp",
        algorithm="mf",
        schedule=schedule,
        seed=int(seed),
    )
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
    return [
        res(f"mf_schedule/{protocol}/{d}/{sch}/seed{s}.csv")
        for d in MFS["datasets"]
        for sch in ("greedy", "simultaneous")
        for s in MFS["seeds"]
    ]


# --- forward gradient with local losses (fg.smk) ---
FG = config["fg"]
FG_CELLS = {c["name"]: c["run"] for c in FG["cells"]}
FG_METHODS = {m["name"]: m["run"] for m in FG["methods"]}


def fg_spec(cell, method, seed):
    """Run spec of one Table 3 cell (LocalMixer size, dataset) and method (rule + options)."""
    return run_spec("fg", experiment="fg", **FG_CELLS[cell], **FG_METHODS[method], seed=int(seed))


def fg_bench_spec(method):
    """The bench cell at the bench's batch size, gradient cosine off (it is not part of a step's cost)."""
    b = FG["bench"]
    spec = json.loads(
        run_spec(
            "fg",
            experiment="fg_bench",
            **FG_CELLS[b["cell"]],
            **FG_METHODS[method],
            seed=int(FG["seeds"][0]),
            batch_size=b["batch_size"],
        )
    )
    spec["options"].pop("cosine_every", None)
    return json.dumps(spec, sort_keys=True)


def fg_bench_specs():
    methods = FG["bench"].get("methods", ["fg-a", "lg-fg-a", "fa", "dfa"])
    unknown = sorted(set(methods) - set(FG_METHODS))
    if unknown:
        raise ValueError(f"fg.bench.methods: {unknown} not among fg.methods' names {sorted(FG_METHODS)}")
    return " ".join(f"--spec {shlex.quote(fg_bench_spec(m))}" for m in methods)


def fg_cosine_methods():
    """Methods whose fg options record the gradient cosine (cosine_every > 0)."""
    return [
        m
        for m in FG_METHODS
        if json.loads(fg_spec(next(iter(FG_CELLS)), m, FG["seeds"][0]))["options"].get("cosine_every", 0) > 0
    ]


def fg_runs():
    return expand(res("fg/{cell}/{method}/seed{seed}.csv"), cell=FG_CELLS, method=FG_METHODS, seed=FG["seeds"])


# --- the claims ledger (claims.smk) ---
CL = config["claims"]


def claims_evidence():
    """The evidence of the artefacts the ledger judges (`claims.artefacts`, default: all)."""
    return [f for a in CL.get("artefacts") or sorted(EVIDENCE) for f in EVIDENCE[a]]


# --- Scalable Forward-Forward (sff.smk) ---
SFF = config["sff"]
SFF_TUNE = SFF["tuned"]
SFF_BENCH = SFF["bench"]


_tuning.check_tuned("sff.tuned", SFF_TUNE, SFF["seeds"], sorted({a for c in SFF["columns"].values() for a in c}))


def sff_spec(column, suffix="", **values):
    """Run spec of one sff job. A column's overrides match its label (e.g. `when: {experiment: sff_small}`);
    the tuned protocol's jobs carry the tuning keys and are labelled `<column>_tune` / `<column>_tuned`."""
    if suffix:
        keys = ("optimizer", "lr_schedule", "val_fraction", "patience")
        values = {
            **{k: SFF_TUNE[k] for k in keys},
            "stop_mode": SFF_TUNE["primary_mode"][values["algorithm"]],
            **values,
        }
    spec = json.loads(run_spec("sff", experiment=column, **values))
    spec["experiment"] = column + suffix
    return json.dumps(spec, sort_keys=True)


def _sff_cells(columns):
    return [(c, d, a, alg) for c in columns for d in SFF["datasets"] for a in SFF["archs"] for alg in SFF["columns"][c]]


def sff_runs():
    return [
        res(f"sff/{c}/{d}/{a}/{alg}/seed{s}.csv") for c, d, a, alg in _sff_cells(SFF["columns"]) for s in SFF["seeds"]
    ]


def sff_tuned_runs():
    if not SFF_TUNE["enabled"]:
        return []
    return [
        res(f"sff_tuned/{c}/{d}/{a}/{alg}/seed{s}.csv")
        for c, d, a, alg in _sff_cells(SFF_TUNE["columns"])
        for s in SFF["seeds"]
    ]


def sff_trial_spec(wc):
    point = study_trials(f"sff/{wc.column}/{wc.dataset}/{wc.arch}/{wc.algorithm}", SFF_TUNE)[int(wc.trial)]
    return sff_spec(wc.column, "_tune", dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm, **point)


def sff_trial_runs(wc):
    return trial_runs(res(f"sff_tuned/trials/{wc.column}/{wc.dataset}/{wc.arch}/{wc.algorithm}"), SFF_TUNE)


def sff_bench_csvs():
    return expand(
        res("sff/bench/{dataset}/{arch}/seed{seed}.csv"),
        dataset=SFF_BENCH["datasets"],
        arch=SFF_BENCH["archs"],
        seed=SFF_BENCH["seeds"],
    )


_SFF_WC = dict(column="[^/]+", dataset="[^/]+", arch="[^/]+", algorithm="[^/]+", seed=r"\d+")


def sff_bench_spec(wc, algorithm):
    return sff_spec(
        "sff_bench", dataset=wc.dataset, arch=wc.arch, algorithm=algorithm, seed=int(wc.seed), **SFF_BENCH["run"]
    )


SFF_TR = SFF["transfer"]
_SFF_TR_WC = dict(dataset="[^/]+", arch="[^/]+", algorithm="[^/]+", seed=r"\d+")
if set(SFF_TR["pretrain_classes"]) & set(SFF_TR["transfer_classes"]):
    raise ValueError(
        f"sff.transfer: pretrain_classes {SFF_TR['pretrain_classes']} and transfer_classes "
        f"{SFF_TR['transfer_classes']} share classes; a transfer task's classes must be new"
    )


def sff_pretrain_weights(wc):
    """The pretrain run's weights a transfer job starts from (same dataset, net, rule and seed)."""
    return res(f"sff_transfer/pretrain/{wc.dataset}/{wc.arch}/{wc.algorithm}/seed{wc.seed}.weights.pt")


def sff_transfer_spec(wc, stage):
    """Run spec of a transfer job: `pretrain` (saves its weights) or `transfer` (starts from them)."""
    T = SFF_TR
    values = dict(dataset=wc.dataset, arch=wc.arch, algorithm=wc.algorithm, seed=int(wc.seed))
    if stage == "pretrain":
        values.update(classes=T["pretrain_classes"], save_weights=True, **T["pretrain"])
    else:
        values.update(
            classes=T["transfer_classes"],
            init_from=sff_pretrain_weights(wc),
            transfer_train=T["transfer_train"],
            **T["run"],
        )
    return sff_spec(f"sff_{stage}", **values)


def sff_transfer_runs():
    if not SFF_TR["enabled"]:
        return []
    return expand(
        res("sff_transfer/transfer/{dataset}/{arch}/{algorithm}/seed{seed}.csv"),
        dataset=SFF_TR["datasets"],
        arch=SFF_TR["archs"],
        algorithm=SFF_TR["rules"],
        seed=SFF_TR["seeds"],
    )


# --- the ablation ladder under both cost protocols (ablation.smk) ---
ABL = config["ablation"]
ABL_PROTOCOLS = ("matched", "converged")


def ablation_spec(wc):
    """Table 3's MLP run of the dataset as the rung, under the protocol's budget (seeds: `--seeds`)."""
    base = run_spec(
        "table3", experiment=f"ablation_{wc.protocol}", dataset=wc.dataset, arch="mlp", algorithm=wc.algorithm
    )
    if wc.protocol == "matched":
        return with_keys(base, epochs=ABL["matched"]["epochs"], patience=0)
    c = ABL["converged"]
    return with_keys(base, epochs=c["max_epochs"], patience=c["patience"], val_fraction=c["val_fraction"])


def ablation_runs(protocol):
    if not ABL["enabled"]:
        return []
    return [
        res(f"ablation/{protocol}/{d}/{alg}/seed{s}.csv")
        for d in ABL["datasets"]
        for alg in ABL["algorithms"]
        for s in ABL["seeds"]
    ]


# --- Mono-Forward v2's MLP-Mixer claim on PathMNIST (mixer.smk) ---
PMX = config["pathmnist_mixer"]


def pathmnist_mixer_spec(dataset, algorithm, experiment="pathmnist_mixer"):
    """The cell's run spec (seeds: `--seeds`); the memory jobs measure the same net, labelled apart."""
    return run_spec(
        "pathmnist_mixer", experiment=experiment, dataset=dataset, algorithm=algorithm, seed=int(PMX["seeds"][0])
    )


def pathmnist_mixer_runs():
    return [
        res(f"pathmnist_mixer/{d}/{alg}/seed{s}.csv")
        for d in PMX["datasets"]
        for alg in PMX["algorithms"]
        for s in PMX["seeds"]
    ]


def pathmnist_mixer_memory_csvs():
    return [res(f"pathmnist_mixer/memory/{d}/{alg}.csv") for d in PMX["datasets"] for alg in PMX["algorithms"]]
