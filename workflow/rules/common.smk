# Config validation and the helpers every rules file uses. No rules here.
import json
import os
import shlex
import sys

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

# Every output lives under its configuration's name, so smoke, CPU and paper results
# never mix or overwrite each other: results/<name>/..., figures/<name>/..., logs/<name>/...
NAME = config["name"]


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
