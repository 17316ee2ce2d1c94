# Config validation and the helpers every rules file uses. No rules here: functions live
# in this file only (`snakemake --lint`), the rules files hold rules and their targets.
import json
import os
import time

from snakemake.utils import validate

validate(config, workflow.source_path("../schemas/config.schema.yaml"))


report: "../report/workflow.rst"


# Each rules file appends its final targets; `rule all` requests them.
ALL_TARGETS = []
# ... and, per artefact, the CSVs its claims are judged from (the ledger reads them; it never trains).
EVIDENCE = {}
# ... and the result tables the report renders (csv path -> report category; report.smk).
TABLES = {}

# Every output lives under its configuration's name, so smoke, CPU and paper results
# never mix or overwrite each other: results/<name>/..., figures/<name>/..., logs/<name>/...
NAME = config["name"]
STARTED = time.monotonic()  # for the closing summary's wall time


def res(path):
    return f"results/{NAME}/{path}"


def fig(path):
    return f"figures/{NAME}/{path}"


def logf(path):
    return f"logs/{NAME}/{path}"


# Resources by job kind (`resources: **TRAIN_RES` / `**MEASURE_RES`): training jobs may
# share the accelerator; jobs whose result is a time, memory or energy figure run alone.
TRAIN_RES = {"gpu": 1}
MEASURE_RES = {"gpu": 1}
# Software for all rules (`conda` directive ENV): the environment of `snakemake --sdm conda`, whose
# post-deploy script installs this checkout; without --sdm, jobs run in the current environment.
ENV = "../envs/mfbench.yaml"


def _matches(when, values):
    """An override applies when every key it names matches (a value or a list of values)."""
    for k, v in when.items():
        allowed = v if isinstance(v, list) else [v]
        if values.get(k) not in allowed:
            return False
    return True


def run_spec(section, **values):
    """JSON run spec for `mfbench train --spec`: global run defaults, then the section's
    run keys, then matching overrides in order, then the job's own values (wildcards),
    then the rule options of its algorithm."""
    sec = config[section]
    spec = {"data_dir": config["data_dir"], "device": config["device"], "download": config["download"]}
    spec.update(config["run"])
    spec.update(sec.get("run", {}))
    for o in sec.get("overrides", []):
        if _matches(o["when"], {**spec, **values}):
            spec.update(o["set"])
    spec.update(values)
    alg = spec["algorithm"]
    spec["options"] = {**config["options"].get(alg, {}), **spec.get("options", {}).get(alg, {})}
    return json.dumps(spec, sort_keys=True)


def seeds(section):
    return config[section]["seeds"]


def table_html(csv):
    """The report's rendering of a result table (report.smk): figures/<name>/tables/<path>.html."""
    return fig(f"tables/{csv.removeprefix(res('')).removesuffix('.csv')}.html")


# --- where this run comes from: the report's first line, the claims page's title, the closing summary ---
def _datasets(node):
    """Every dataset the config names (keys dataset / datasets / bench_dataset, at any depth)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("dataset", "datasets", "bench_dataset"):
                yield from v if isinstance(v, list) else [v]
            else:
                yield from _datasets(v)
    elif isinstance(node, list):
        for v in node:
            yield from _datasets(v)


def _configfiles():
    """The config files in the order they apply (the Snakefile's default first, later ones win)."""
    given = [str(f) for f in workflow.overwrite_configfiles or []]
    files = [str(f) for f in workflow.configfiles]
    rel = lambda f: os.path.relpath(f) if os.path.isabs(f) else f
    return [rel(f) for f in [*(f for f in files if f not in given), *given]]


REAL_DATASETS = sorted({d for d in _datasets(config) if not d.startswith("synthetic-")})


def provenance():
    """One line: configuration (name + files), data (real or synthetic, where from), device."""
    env = os.environ.get("MFBENCH_DATA")
    where = f"{env} (env MFBENCH_DATA)" if env else f"{config['data_dir']} (config data_dir)"
    if not REAL_DATASETS:
        data = "synthetic data (generated from seeds, nothing read from disk; not comparable with published values)"
    else:
        data = f"real data ({', '.join(REAL_DATASETS)}) from {where}"
        if any(d.startswith("synthetic-") for d in _datasets(config)):
            data += " and synthetic stand-ins (not comparable with published values)"
    device = config["device"]
    if device == "auto":
        device = "auto (CUDA when available, else CPU; each run's .meta.json records the device it used)"
    return (
        f"Configuration {NAME!r} ({' + '.join(_configfiles())}); {data}; device {device}; "
        f"outputs in {res('')}, {fig('')}, {logf('')}"
    )


# The report's front matter (workflow.rst) can read only the config: hand it what it shows
# (computed here, not config keys a user sets).
config["_report"] = {"provenance": provenance(), "synthetic_only": not REAL_DATASETS}


def run_summary(ok):
    """The closing lines of a run: what ran, the claims verdicts (if judged), the report, the wall time."""
    lines = [f"mfbench {'finished' if ok else 'FAILED'}: {config['_report']['provenance']}"]
    ledger = res("claims.csv")
    if ok and os.path.exists(ledger):
        import pandas as pd
        from mfbench.claims.ledger import verdict_counts

        lines.append(f"claims ({ledger}): {verdict_counts(pd.read_csv(ledger, keep_default_na=False))}")
    if ok:
        files = " ".join(f"--configfile {f}" for f in _configfiles()[1:])
        lines.append(f"report: snakemake --report report-{NAME}.html {files}".rstrip())
    else:
        lines.append(f"each job's own error is above and in its log under {logf('')}")
    minutes, seconds = divmod(time.monotonic() - STARTED, 60)
    lines.append(f"wall time {int(minutes)} min {seconds:.0f} s")
    return "\n".join(lines)


# --- Table 3 (accuracy.smk), its tuned protocol, and Table 5 (timing.smk) read the same grid ---
T3 = config["table3"]
TUNE = T3["tuned"]


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


def tuned_cells():
    return [
        (d, a, alg)
        for d in T3["datasets"]
        for a in T3["archs"]
        for alg in TUNE["algorithms"]
        if not any(_matches(x, {"dataset": d, "arch": a, "algorithm": alg}) for x in T3.get("exclude", []))
    ]


def tune_spec(wc, **values):
    """Table 3's spec for the cell, under the tuned protocol's optimiser, validation split and early stopping."""
    return run_spec(
        "table3",
        dataset=wc.dataset,
        arch=wc.arch,
        algorithm=wc.algorithm,
        optimizer=TUNE["optimizer"],
        val_fraction=TUNE["val_fraction"],
        patience=TUNE["patience"],
        **values,
    )


def tune_grid_runs(wc):
    return [
        res(f"table3_tuned/grid/{wc.dataset}/{wc.arch}/{wc.algorithm}/lr{lr}_wd{wd}/seed{s}.csv")
        for lr in TUNE["grid"]["lr"]
        for wd in TUNE["grid"]["weight_decay"]
        for s in TUNE["select_seeds"]
    ]


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


def memory_spec(kind, algorithm):
    if kind == "trace":
        t = MEM["trace"]
        values = dict(
            experiment="fig1_2",
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


def memory_depth_csvs(arch):
    return [res(f"memory/depth/{arch}/{alg}.csv") for alg in MEM["algorithms"]]


# --- Table 4 (timing.smk) ---
LAT = config["latency"]
T5 = config["table5"]


def latency_specs(wc):
    """One `--spec` per rule: each rule's Table 3 run spec for this dataset and model family."""
    seed = T3["seeds"][0]  # untrained weights: the seed changes no timing
    return " ".join(
        "--spec '"
        + run_spec("table3", experiment="table4", dataset=wc.dataset, arch=wc.arch, algorithm=alg, seed=seed)
        + "'"
        for alg in LAT["algorithms"]
    )


# --- the claims ledger (claims.smk) ---
CL = config["claims"]


def claims_evidence():
    """The evidence of the artefacts the ledger judges (`claims.artefacts`, default: all)."""
    return [f for a in CL.get("artefacts") or sorted(EVIDENCE) for f in EVIDENCE[a]]
