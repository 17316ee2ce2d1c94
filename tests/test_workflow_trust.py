"""The workflow as a researcher meets it: lint- and format-clean rules, config changes that rerun
exactly what depends on them, configurations whose outputs and reports never mix, and jobs that
talk on the console (progress, their own error message, a closing summary).

The sandbox tests copy the workflow into a temporary directory and run it there on the committed
CPU reference runs (real MNIST, Table 3's MLP row), so only the cheap summary jobs execute."""
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.path.join(ROOT, "results/reference/cpu/table3_mnist_mlp/mnist/mlp")


def snakemake(*args, cwd=ROOT, **env_changes):
    # this checkout's package and the `mfbench` script beside the running Python, whatever the shell had
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
           "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ["PATH"]])}
    env = {k: v for k, v in {**env, **env_changes}.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)


def job_counts(out: str) -> dict[str, int]:
    if "Nothing to be done" in out:
        return {}
    block = out.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M) if m.group(1) != "total"}


@pytest.mark.slow
@pytest.mark.parametrize("overlay", [[], ["--configfile", "workflow/config/smoke.yaml"]], ids=["paper", "smoke"])
def test_rules_are_lint_clean(overlay):
    """`snakemake --lint`: every shell value through params:, a log and a software env per rule, no
    functions among the rules. A rules file added later is checked too."""
    r = snakemake("--lint", *overlay)
    assert r.returncode == 0 and "Congratulations" in r.stdout + r.stderr, (r.stdout + r.stderr)[-4000:]


def test_rules_are_snakefmt_formatted():
    pytest.importorskip("snakefmt", reason="snakefmt comes with `pip install -e '.[test]'`")
    r = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", "Snakefile", "workflow/"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, f"run `snakefmt Snakefile workflow/`:\n{(r.stdout + r.stderr)[-4000:]}"


@pytest.mark.slow
@pytest.mark.parametrize("overlay,name", [([], "paper"), (["--configfile", "workflow/config/smoke.yaml"], "smoke")],
                         ids=["paper", "smoke"])
def test_every_output_lives_under_its_configuration_name(overlay, name):
    r = snakemake("-n", "--forceall", "--cores", "4", *overlay, "--", "all")
    assert r.returncode == 0, r.stderr[-3000:]
    paths = [p.strip() for m in re.finditer(r"^\s+(?:output|log|benchmark): (.+)$", r.stdout, re.M)
             for p in m.group(1).split(",")]
    assert len(paths) > 20
    stray = [p for p in paths if not p.startswith((f"results/{name}/", f"figures/{name}/", f"logs/{name}/"))]
    assert not stray, stray[:5]


def _write(path, obj):
    with open(path, "w") as f:
        yaml.safe_dump(obj, f)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The workflow with overlay `t` (Table 3's and Table 5's runs = the committed MNIST MLP reference
    runs), its Table 3 and Table 5 summaries executed once; returns (directory, the run's console output)."""
    d = tmp_path_factory.mktemp("workflow")
    shutil.copytree(os.path.join(ROOT, "workflow"), d / "workflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "Snakefile"), d / "Snakefile")
    cfg = d / "workflow/config"
    grid = {"datasets": ["mnist"], "archs": ["mlp"], "algorithms": ["bp", "mf"], "seeds": [0, 1, 2]}
    _write(cfg / "t.yaml", {"name": "t", "table3": {**grid, "tuned": {"enabled": False}}, "table5": grid})
    _write(cfg / "t_selection.yaml", {"table3": {"selection": "best_val"}})
    _write(cfg / "t_skip.yaml", {"table5": {"skip_epochs": 2}})
    for table in ("table3", "table5"):  # Table 5's timing runs: the same runs stand in
        for alg in ("bp", "mf"):
            shutil.copytree(os.path.join(REF, alg), d / f"results/t/{table}/mnist/mlp/{alg}")
    (d / "figures/smoke").mkdir(parents=True)
    (d / "figures/smoke/table3.png").write_bytes(b"a smoke run's figure")
    r = snakemake("--cores", "2", "--configfile", "workflow/config/t.yaml", "--", "results/t/table3/table3.csv",
                  "results/t/table5/table5.csv", cwd=d)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return d, r.stdout + r.stderr


@pytest.mark.slow
def test_the_run_ends_with_a_summary(sandbox):
    _, out = sandbox
    assert re.search(r"mfbench finished: Configuration 't' \(workflow/config/paper.yaml \+ workflow/config/t.yaml\); "
                     r"real data \([^)]*mnist[^)]*\) from \S+ \((env MFBENCH_DATA|config data_dir)\); device auto", out)
    assert "report: snakemake --report report-t.html --configfile workflow/config/t.yaml" in out
    assert re.search(r"wall time \d+ min \d+ s", out)
    assert "claims (" not in out  # no ledger was judged in this run


@pytest.mark.slow
@pytest.mark.parametrize("changed,rule", [("t_selection.yaml", "table3"), ("t_skip.yaml", "table5")])
def test_a_changed_parameter_reruns_exactly_its_rule(sandbox, changed, rule):
    d, _ = sandbox
    targets = ["--", "results/t/table3/table3.csv", "results/t/table5/table5.csv"]
    same = snakemake("-n", "--cores", "2", "--configfile", "workflow/config/t.yaml", *targets, cwd=d)
    assert same.returncode == 0 and job_counts(same.stdout) == {}, same.stdout[-2000:]
    r = snakemake("-n", "--cores", "2", "--configfile", "workflow/config/t.yaml", f"workflow/config/{changed}",
                  *targets, cwd=d)
    assert r.returncode == 0, r.stderr[-2000:]
    assert job_counts(r.stdout) == {rule: 1}, r.stdout[-2000:]
    assert "Params have changed" in r.stdout


@pytest.mark.slow
def test_a_paper_dry_run_plans_nothing_for_a_smoke_figure(sandbox):
    d, _ = sandbox
    r = snakemake("-n", "--cores", "4", "figures/smoke/table3.png", cwd=d)  # paper.yaml, the default
    out = r.stdout + r.stderr
    # no paper rule writes under figures/smoke/: Snakemake refuses the target instead of retraining for it
    assert r.returncode != 0 and "No rule to produce figures/smoke/table3.png" in out, out[-2000:]
    assert "table3_run" not in out and (d / "figures/smoke/table3.png").read_bytes() == b"a smoke run's figure"


@pytest.mark.slow
def test_the_report_names_its_configuration_and_holds_only_its_outputs(sandbox):
    d, _ = sandbox
    r = snakemake("--report", "report.html", "--configfile", "workflow/config/t.yaml", "--",
                  "results/t/table3/table3.csv", cwd=d)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    html = (d / "report.html").read_text()
    assert "Configuration &#x27;t&#x27; (workflow/config/paper.yaml + workflow/config/t.yaml)" in html \
        or "Configuration 't' (workflow/config/paper.yaml + workflow/config/t.yaml)" in html
    assert "figures/t/table3.png" in html and "figures/smoke" not in html


@pytest.mark.slow
def test_jobs_show_progress_and_their_own_error_on_the_console(sandbox):
    d, _ = sandbox
    # bp trains on synthetic data; the MNIST run fails at run time: no data under data_dir
    tiny = {"name": "tc", "data_dir": str(d / "no-data"),
            "table3": {"datasets": ["synthetic-mnist", "mnist"], "run": {"epochs": 2, "width": 16, "train_subset": 256}}}
    _write(d / "workflow/config/tc.yaml", tiny)
    r = snakemake("--cores", "2", "--keep-going", "--configfile", "workflow/config/tc.yaml", "--",
                  *(f"results/tc/table3/{ds}/mlp/bp/seed0.csv" for ds in ("synthetic-mnist", "mnist")), cwd=d,
                  MFBENCH_DATA=None)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert "[table3 bp synthetic-mnist seed 0] epoch 2/2" in out  # progress, not only in the log
    assert "mfbench: error: dataset 'mnist' not found under data_dir" in out  # the job's own message
    assert "mfbench FAILED: Configuration 'tc'" in out and "logs/tc/" in out
    assert "dataset 'mnist' not found" in (d / "logs/tc/table3/mnist/mlp/bp/seed0.log").read_text()
