"""The package's layers (pyproject.toml, [tool.importlinter]) hold: no module imports from a layer
above its own, so no import cycle spans layers. The check runs `lint-imports`, and fails when a
cycle is put back (a copy of the package where a rule imports `config` again)."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = shutil.which("lint-imports") or os.path.join(os.path.dirname(sys.executable), "lint-imports")
pytestmark = pytest.mark.skipif(not os.path.exists(LINT), reason="import-linter is not installed (pip install -e .[test])")


def lint(root: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": root}  # this tree's mfbench, not an installed one
    return subprocess.run([LINT, "--no-cache"], cwd=root, env=env, capture_output=True, text=True)


def test_the_layers_hold():
    p = lint(ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "1 kept, 0 broken" in p.stdout


def test_a_cycle_put_back_breaks_the_contract(tmp_path):
    shutil.copytree(os.path.join(ROOT, "mfbench"), tmp_path / "mfbench",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path)
    base = tmp_path / "mfbench" / "algorithms" / "base.py"
    base.write_text(base.read_text() + "\nfrom mfbench.config import RunConfig  # noqa: E402,F401 (the old cycle)\n")
    p = lint(str(tmp_path))
    assert p.returncode != 0 and "BROKEN" in p.stdout.upper()
    assert "mfbench.algorithms.base -> mfbench.config" in p.stdout
