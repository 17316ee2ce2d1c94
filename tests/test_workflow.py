"""The Snakemake workflow: config validation, the paper grid, packaging consistency."""
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(*args, cwd=ROOT):
    return subprocess.run(SNAKEMAKE + ["-n", "--cores", "4", *args], cwd=cwd, capture_output=True, text=True)


def job_counts(stdout: str) -> dict[str, int]:
    block = stdout.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


@pytest.mark.slow
def test_paper_dry_run_lists_the_full_table3_grid():
    r = dry_run("--forceall", "all")
    assert r.returncode == 0, r.stderr[-3000:]
    cfg = yaml.safe_load(open(os.path.join(ROOT, "workflow/config/paper.yaml")))["table3"]
    n = len(cfg["datasets"]) * len(cfg["archs"]) * len(cfg["algorithms"]) * len(cfg["seeds"])
    n -= sum(len(cfg["datasets"]) * len(cfg["seeds"]) for x in cfg.get("exclude", []) if set(x) == {"algorithm", "arch"})
    counts = job_counts(r.stdout)
    assert counts["table3_run"] == n
    assert counts["table3"] == 1


@pytest.mark.parametrize("patch,needle", [
    ({"tabel3": {}}, "Additional properties are not allowed ('tabel3'"),
    ({"device": "tpu"}, "'tpu' is not one of ['auto', 'cpu', 'cuda']"),
    ({"table3": {"archs": ["transformer"]}}, "'transformer' is not one of ['mlp', 'cnn']"),
    ({"table3": {"run": {"epochs": 0}}}, "0 is less than the minimum of 1"),
])
def test_malformed_config_is_rejected_with_the_reason(tmp_path, patch, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(patch))
    r = dry_run("--configfile", str(bad), "--", "all")
    assert r.returncode != 0
    assert needle in r.stdout + r.stderr


def test_every_schema_key_is_described():
    schema = yaml.safe_load(open(os.path.join(ROOT, "workflow/schemas/config.schema.yaml")))

    def walk(node, path):
        for k, v in node.get("properties", {}).items():
            assert "description" in v or "$ref" in v, f"{path}.{k} has no description"
            if v.get("type") == "object":
                assert v.get("additionalProperties") is not None, f"{path}.{k} accepts unknown keys"
            walk(v, f"{path}.{k}")

    walk(schema, "config")
    for name, d in schema["$defs"].items():
        walk(d, f"$defs.{name}")


def test_environment_yml_matches_pyproject():
    py = tomllib.load(open(os.path.join(ROOT, "pyproject.toml"), "rb"))["project"]
    wanted = set(py["dependencies"]) | set(py["optional-dependencies"]["test"])
    env = yaml.safe_load(open(os.path.join(ROOT, "environment.yml")))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) - {"-e ."} == wanted
    py_req = py["requires-python"].removeprefix(">=")
    assert f"python>={py_req}" in env["dependencies"]


@pytest.mark.parametrize("overlay", ["smoke.yaml", "cpu-mnist.yaml"])
def test_shipped_configs_validate_and_build_a_dag(overlay):
    r = dry_run("--forceall", "all", "--configfile", f"workflow/config/{overlay}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "table3_run" in job_counts(r.stdout)


def _specs(*targets):
    r = subprocess.run(SNAKEMAKE + ["-n", "-p", "--forceall", "--cores", "1", *targets], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    specs = [json.loads(m) for m in re.findall(r"--spec '(\{.*?\})'", r.stdout)]
    return {s["experiment"] + ":" + s.get("schedule", ""): s for s in specs}


def test_controls_differ_from_the_runs_they_control_only_where_named():
    res = "results/paper/"
    s = _specs(res + "table3/cifar10/mlp/mf/seed3.csv", res + "table3_frozen_m/cifar10/seed3.csv",
               res + "fig5/mnist/depth7/bp/seed1.csv", res + "fig5_he/mnist/depth7/bp/seed1.csv",
               res + "mf_schedule/matched/cifar10/greedy/seed2.csv",
               res + "mf_schedule/matched/cifar10/simultaneous/seed2.csv")

    def diff(a, b):
        return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}

    t3, frozen = s["table3:"], s["table3_frozen_m:"]
    assert diff(t3, frozen) == {"experiment", "options"} and frozen["options"] == {"learn_projection": False}
    assert diff(s["fig5:"], s["fig5_he:"]) == {"experiment", "init"} and s["fig5_he:"]["init"] == "he"
    greedy, simul = s["mf_schedule_matched:greedy"], s["mf_schedule_matched:simultaneous"]
    assert diff(greedy, simul) == {"schedule", "epochs"}
    assert simul["epochs"] == greedy["epochs"] * greedy["depth"]  # match: total passes over the data
    assert greedy["depth"] == t3["depth"] == 3 and greedy["width"] == t3["width"]  # Table 3's CIFAR MLP
