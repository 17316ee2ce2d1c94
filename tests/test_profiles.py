"""Workflow profiles and GPU sharing by job kind, checked on dry runs (no job runs).

Locally a training job takes one of the `gpu_slots` the default workflow profile declares, a
job whose result is a time, memory or energy figure takes all of them (so it runs alone); on a
cluster each gets its own GPU and measurement jobs an exclusive node.
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE = "workflow/config/smoke.yaml"
# Rules whose output is a time, memory or energy figure, and rules that only train.
MEASURE = {"table4_latency", "table5_run", "memory_trace", "memory_depth", "ff_study_run", "ff_study_speed",
           "mf_schedule_run", "fg_bench", "sff_bench", "ablation_run", "pathmnist_mixer_memory"}
TRAIN = {"table3_run", "table3_tune_run", "table3_tuned_run", "table3_frozen_m_run", "fig4_run", "fig5_run",
         "fig5_he_run", "hinton_ff_run", "fg_run", "sff_run", "sff_tune_run", "sff_tuned_run", "sff_pretrain_run",
         "sff_transfer_run", "pathmnist_mixer_run"}
HAS_SLURM_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def dry_run(*args):
    """`snakemake -n` from the repository root, as a user types it: targets first, then options."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--forceall", *args], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def jobs(stdout: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every planned job, from the dry run's job blocks."""
    out = []
    for block in re.split(r"\n(?=rule \w+:)", stdout):
        m = re.match(r"rule (\w+):", block)
        if not m:
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        pairs = re.findall(r"(\w+)=([^,]*)", res.group(1)) if res else []
        out.append((m.group(1), dict(pairs)))
    return out


def profile_slots() -> int:
    prof = yaml.safe_load(open(os.path.join(ROOT, "profiles/default/config.v8+.yaml")))
    return int(prof["resources"]["gpu_slots"])


def test_default_profile_is_loaded_from_the_repository_root():
    r = dry_run("all", "--cores", "4", "--configfile", SMOKE)
    assert "workflow specific profile profiles/default" in r.stderr
    assert "Shell command: mfbench train" in r.stdout  # the profile's printshellcmds
    slots = {res.get("gpu_slots") for rule, res in jobs(r.stdout) if rule in MEASURE}
    assert slots == {str(profile_slots())}  # the profile's gpu_slots reached the rules


def test_without_the_profile_nothing_of_it_applies():
    """The control for the test above: its checks do fail when the profile is not loaded."""
    r = dry_run("all", "--cores", "4", "--configfile", SMOKE, "--workflow-profile", "none")
    assert "profiles/default" not in r.stderr
    assert "Shell command:" not in r.stdout
    slots = {res.get("gpu_slots") for rule, res in jobs(r.stdout) if rule in MEASURE}
    assert slots and str(profile_slots()) not in slots


@pytest.mark.parametrize("config,slots", [(SMOKE, None), (SMOKE, 2), ("workflow/config/paper.yaml", None)])
def test_training_jobs_share_the_gpu_and_measurement_jobs_run_alone(config, slots):
    extra = ["--resources", f"gpu_slots={slots}"] if slots else []
    r = dry_run("all", "--cores", "4", "--configfile", config, *extra)
    total = slots or profile_slots()
    planned = jobs(r.stdout)
    rules = {rule for rule, _ in planned}
    assert MEASURE <= rules and TRAIN <= rules
    for rule, res in planned:
        if rule in TRAIN:
            assert int(res["gpu_slots"]) == 1 < total, (rule, res)  # several at once
            assert "slurm_extra" not in res
        elif rule in MEASURE:
            assert int(res["gpu_slots"]) == total, (rule, res)  # every slot: nothing runs beside it
            assert res["slurm_extra"] == "--exclusive"
        else:
            assert "gpu_slots" not in res, f"{rule} is neither a training nor a measurement rule"
    gpus = {res["gpu"] for rule, res in planned if rule in TRAIN | MEASURE}
    device = yaml.safe_load(open(os.path.join(ROOT, config)))["device"]
    assert gpus == {"0" if device == "cpu" else "1"}


def test_table5_times_dedicated_runs_not_the_shared_table3_runs():
    rules = [rule for rule, _ in jobs(dry_run("table5", "--cores", "4", "--configfile", SMOKE).stdout)]
    assert "table5_run" in rules and "table3_run" not in rules


@pytest.mark.skipif(not HAS_SLURM_PLUGIN, reason="snakemake-executor-plugin-slurm not installed (pip install -e '.[slurm]')")
@pytest.mark.parametrize("profile,gpus", [("slurm", "1"), ("slurm-cpu", "0")])
def test_cluster_profiles_request_one_gpu_per_job_and_exclusive_measurement_nodes(profile, gpus, monkeypatch):
    monkeypatch.setenv("MFBENCH_SLURM_ACCOUNT", "proj42")
    monkeypatch.delenv("MFBENCH_SLURM_PARTITION", raising=False)
    r = dry_run("all", "--profile", f"workflow/profiles/{profile}")
    planned = jobs(r.stdout)
    for rule, res in planned:
        if rule in TRAIN | MEASURE:
            assert res["gpu"] == gpus, (rule, res)
            assert res["slurm_account"] == "proj42"
            assert res.get("slurm_partition") == ("gpu" if profile == "slurm" else None)
            assert int(res["mem_mb"]) <= 16000 and int(res["runtime"]) <= 240
            assert (res.get("slurm_extra") == "--exclusive") == (rule in MEASURE)


def test_only_training_and_measurement_jobs_leave_the_submitting_machine():
    """On a cluster a rule runs locally iff it is declared local; every rule without a GPU resource
    (aggregation, selection, figures) must be, and none with one. `use rule ... as` does not inherit
    `localrule`, which once sent sff_tune_select to SLURM."""
    from pathlib import Path

    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with SnakemakeApi(OutputSettings()) as api:
            wf = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                              config_settings=ConfigSettings(configfiles=[Path(SMOKE)]), snakefile=Path("Snakefile"))
            w = wf._workflow
            wrong = {r.name for r in w.rules if (r.name in w._localrules) == ("gpu" in r.resources)} - {"all"}
    finally:
        os.chdir(cwd)
    assert not wrong, f"rules whose localrule does not match their kind: {sorted(wrong)}"
