"""The fairness invariants, on the workflow's real plan (its dry run): for every paired comparison of the
claims registry, both sides train with the same batch size, split, seeds, epoch cap or data passes, and
stopping rule; under the tuned protocol with the same trial count, search space and tuning seeds, and
never the same tuned value. Overlays that let one arm drift must fail it."""
import copy
import os
import subprocess
import sys

import pytest
import yaml

from mfbench import claims
from mfbench.experiments import fairness as plan

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _plan(tmp_path, *configs, overlay=None):
    files = list(configs)
    if overlay is not None:
        p = tmp_path / "overlay.yaml"
        p.write_text(yaml.safe_dump(overlay))
        files.append(str(p))
    cmd = [sys.executable, "-m", "snakemake", "-n", "-p", "--forceall", "--configfile", *files]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return plan.read(out.stdout + out.stderr)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return _plan(tmp_path_factory.mktemp("smoke"), "workflow/config/smoke.yaml")


def _tuned_cells(p, experiment):
    """(dataset, arch, algorithm) -> number of trial jobs of that study."""
    jobs = {}
    for r in p["runs"]:
        if r["experiment"] == experiment:
            jobs.setdefault((r["dataset"], r["arch"], r["algorithm"]), set()).add(r["trial_job"])
    return {k: len(v) for k, v in jobs.items()}


@pytest.mark.parametrize("config", ["workflow/config/paper.yaml", "workflow/config/smoke.yaml"])
def test_the_plan_is_fair_and_every_arm_gets_the_same_trials(tmp_path, config, smoke):
    p = smoke if "smoke" in config else _plan(tmp_path, config)
    bad, n = plan.check(p, claims.load())
    assert bad == []
    assert n >= 30  # the comparisons were found in the plan, both protocols
    cells = _tuned_cells(p, "table3_tune")
    cfg = yaml.safe_load(open(os.path.join(ROOT, config)))
    trials = cfg["table3"]["tuned"]["trials"]
    assert cells and set(cells.values()) == {trials}  # equal trial counts per arm, in every cell
    assert len(cells) == len(cfg["table3"]["datasets"]) * len(cfg["table3"]["archs"]) * 2


@pytest.mark.parametrize("overlay, what", [
    ({"table3": {"overrides": [{"when": {"algorithm": "mf"}, "set": {"batch_size": 64}}]}}, "batch_size"),
    ({"table3": {"overrides": [{"when": {"algorithm": "bp"}, "set": {"epochs": 3}}]}}, "budget"),
    ({"table3": {"overrides": [{"when": {"algorithm": "bp"}, "set": {"train_subset": 1000}}]}}, "train_subset"),
])
def test_an_overlay_that_lets_one_arm_drift_fails(tmp_path, overlay, what):
    p = _plan(tmp_path, "workflow/config/smoke.yaml", overlay=overlay)
    bad, _ = plan.check(p, claims.load())
    assert bad and all(f"{what} differs" in b for b in bad)
    assert any("(tuned)" in b for b in bad) and any("(paper)" in b for b in bad)


def _drop_trial(p, algorithm):
    """The plan with one of `algorithm`'s trials (every study of it) removed: what a per-arm trial count
    would plan (the config has one `trials` per section, so no overlay can express it)."""
    q = copy.deepcopy(p)
    gone = {r["trial_job"] for r in q["runs"] if r["experiment"] == "table3_tune" and r["algorithm"] == algorithm
            and "/t1/" in r["out"]}
    q["runs"] = [r for r in q["runs"] if r["trial_job"] not in gone]
    for s in q["selects"]:
        s["inputs"] = [i for i in s["inputs"] if not any(i.startswith(os.path.dirname(g)) for g in gone)]
    return q


def test_a_different_trial_count_for_one_arm_fails(smoke):
    bad, _ = plan.check(_drop_trial(smoke, "mf"), claims.load())
    assert bad and all("tuned protocol's trials differs" in b for b in bad)


def test_arms_sharing_a_tuned_value_fails(smoke):
    q = copy.deepcopy(smoke)
    bp = {(r["dataset"], r["arch"], r["out"].split("/t")[-1]): r["lr"] for r in q["runs"]
          if r["experiment"] == "table3_tune" and r["algorithm"] == "bp"}
    for r in q["runs"]:  # mf tries exactly bp's learning rates: a grid, not independent draws
        if r["experiment"] == "table3_tune" and r["algorithm"] == "mf":
            r["lr"] = bp[(r["dataset"], r["arch"], r["out"].split("/t")[-1])]
    bad, _ = plan.check(q, claims.load())
    assert bad and all("both arms try lr" in b for b in bad)


def test_plan_summary_counts_jobs_and_epochs(smoke):
    s = plan.summary(smoke)
    assert s.startswith(f"{sum(smoke['jobs'].values())} jobs") and "planned epochs" in s
