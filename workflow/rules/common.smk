# Config validation and the helpers every rules file uses. No rules here: functions live in
# this file and specs.smk only (`snakemake --lint`); the rules files hold rules and targets.
import json
import os
import shlex
import sys
import time

from snakemake.utils import update_config, validate

from mfbench import wfconfig

# `--config 'run={lr: 0.01}'`: nested values arrive as text; type them as a config file would.
update_config(config, wfconfig.command_line_overrides(workflow.config_settings.overwrite_config))
# A bad key or value (a dataset typo, an unknown rule option) stops here, before any job, in one line.
wfconfig.validate(validate, config, workflow.source_path("../schemas/config.schema.yaml"))
if workflow.is_main_process:  # a killed run's stale lock must not stop the same command from resuming
    _cleared = wfconfig.clear_stale_locks()
    if _cleared:
        print(f"mfbench: {_cleared}", file=sys.stderr)


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


# Resources by job kind. Training jobs (`**TRAIN_RES`, `threads: TRAIN_THREADS`) share the
# accelerator; jobs whose result is a time, memory or energy figure (`**MEASURE_RES`,
# `threads: MEASURE_THREADS`) run alone; aggregation and figure jobs are `localrule: True`
# (seconds each: queueing them on a cluster costs more than running them).
# Locally the share count is the global resource `gpu_slots` (profiles/default, or
# `--resources gpu_slots=N`): a training job takes one slot, a measurement job all of them.
# `gpu_slots` is scoped local, so a cluster executor ignores it: there `gpu` is each job's own
# GPU request (--gpus) and `slurm_extra` makes a measurement job exclusive on its node.
# `device: cpu` asks for no GPU (CPU smoke runs, the CPU-only cluster variant).
resource_scopes:
    gpu_slots="local",


def _slots():
    r = workflow.global_resources.get("gpu_slots")
    return r.value if r is not None else 1


def _kind(kind, **extra):
    r = config["resources"][kind]
    return {"mem_mb": r["mem_mb"], "runtime": r["runtime"], **extra}


GPUS_PER_JOB = 0 if config["device"] == "cpu" else 1
TRAIN_RES = _kind("train", gpu=GPUS_PER_JOB, gpu_slots=1)
MEASURE_RES = _kind("measure", gpu=GPUS_PER_JOB, gpu_slots=_slots(), slurm_extra="--exclusive")
TRAIN_THREADS = config["resources"]["train"]["threads"]
MEASURE_THREADS = config["resources"]["measure"]["threads"]
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
    stopped = wfconfig.STOPPED[0] if wfconfig.STOPPED else ""
    state = "finished" if ok else (f"stopped by {stopped}" if stopped else "FAILED")
    lines = [f"mfbench {state}: {config['_report']['provenance']}"]
    ledger = res("claims.csv")
    if ok and os.path.exists(ledger):
        from mfbench import results_io
        from mfbench.claims.ledger import verdict_counts

        try:
            lines.append(f"claims ({ledger}): {verdict_counts(results_io.read_table(ledger, results_io.LEDGER))}")
        except results_io.ResultFileError as e:
            lines.append(f"claims: {e}")
    if ok:
        files = " ".join(f"--configfile {f}" for f in _configfiles()[1:])
        lines.append(f"report: snakemake --report report-{NAME}.html {files}".rstrip())
    elif stopped:
        lines.append("run the same command again: finished outputs are kept, stopped training resumes")
    else:
        lines.append(f"each job's own error is above and in its log under {logf('')}")
    minutes, seconds = divmod(time.monotonic() - STARTED, 60)
    lines.append(f"wall time {int(minutes)} min {seconds:.0f} s")
    return "\n".join(lines)
