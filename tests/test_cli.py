"""CLI start-up: commands listed without importing their modules; summaries and figures without torch."""
import argparse
import importlib
import json
import subprocess
import sys

import pytest
from conftest import small_cfg

from mfbench import cli, experiments

# Runs mfbench's CLI in a fresh interpreter where importing torch (or torchvision) fails.
NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            raise ImportError("this command must not import " + name)
sys.meta_path.insert(0, NoTorch())
from mfbench import cli
try:
    rc = cli.main(sys.argv[1:])
except SystemExit as e:  # argparse's --help
    rc = e.code
heavy = sorted(m for m in ("torch", "pandas", "matplotlib", "scipy") if m in sys.modules)
print("IMPORTED", " ".join(heavy))
sys.exit(rc)
"""


def no_torch(*argv: str) -> list[str]:
    """Run `mfbench *argv` with torch blocked; the heavy modules it imported."""
    p = subprocess.run([sys.executable, "-c", NO_TORCH, *argv], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.rsplit("IMPORTED", 1)[1].split()


def test_commands_read_from_source_are_those_registered():
    sub = argparse.ArgumentParser().add_subparsers()
    for mod in experiments.modules():
        mod.add_command(sub)
    registered = {a.dest: a.help for a in sub._choices_actions}
    found = experiments.commands()
    assert {k: h for k, (_, h) in found.items()} == registered
    for name, (mod, _) in found.items():  # each is registered by the module named
        s = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(mod).add_command(s)
        assert name in s.choices


def test_a_command_builds_its_full_parser_and_lists_the_others():
    p = cli.parser(["table3", "x.csv"])
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {"train", "options", *experiments.commands()}
    assert any(a.dest == "selection" for a in sub.choices["table3"]._actions)
    assert not any(a.dest == "depths" for a in sub.choices["bench"]._actions)  # listed, not built


def test_help_imports_no_heavy_module():
    assert no_torch("--help") == []


@pytest.mark.slow
def test_summary_and_figure_commands_run_without_torch(tmp_path):
    """The aggregation and plotting jobs of the workflow, on small real outputs, with torch blocked."""
    from mfbench.experiments import latency, memory
    from mfbench.run import train

    runs = []
    for alg in ("bp", "mf"):
        for seed in (0, 1):
            out = str(tmp_path / f"{alg}{seed}.csv")
            train(small_cfg(algorithm=alg, seed=seed, epochs=2, experiment="table3"), out, log=lambda s: None)
            runs.append(out)
    spec = {"dataset": "synthetic-mnist", "depth": 1, "width": 16, "device": "cpu"}
    lat = str(tmp_path / "lat.csv")
    latency.latency([json.dumps({**spec, "algorithm": a}) for a in ("bp", "mf")], [1, 4], lat, repeats=2, warmup=0)
    depths = []
    for a in ("bp", "mf"):
        depths.append(str(tmp_path / f"depth_{a}.csv"))
        memory.memory_depth(small_cfg(algorithm=a, experiment="fig3a"), [1, 2], depths[-1], full_batch=False,
                            warmup_steps=0, steps=1, log=lambda s: None)

    t = tmp_path
    assert "torch" not in no_torch("table3", *runs, "--out", f"{t}/t3.csv", "--figure", f"{t}/t3.png")
    no_torch("table5", *runs, "--skip-epochs", "1", "--out", f"{t}/t5.csv", "--figure", f"{t}/t5.png")
    no_torch("fig4-summary", *runs, "--out", f"{t}/f4.csv")
    no_torch("fig4-figure", f"{t}/f4.csv", "--out", f"{t}/f4.png")
    no_torch("table4", lat, "--out", f"{t}/t4.csv", "--figure", f"{t}/t4.png")
    no_torch("memory-slopes", *depths, "--out", f"{t}/slopes.csv")
    no_torch("memory-plot-depth", *depths, "--slopes", f"{t}/slopes.csv", "--out", f"{t}/f3.png")
    no_torch("claims-judge", *runs, f"{t}/slopes.csv", "--out", f"{t}/claims.csv")  # evidence of a known kind
    no_torch("controls-summary", *runs, "--out", f"{t}/ctl.csv", "--figure", f"{t}/ctl.png")
    for f in ("t3.png", "t5.png", "f4.png", "t4.png", "f3.png", "claims.csv", "ctl.png"):
        assert (tmp_path / f).stat().st_size > 0
