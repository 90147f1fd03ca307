"""The research studies in tools/: not installed with lcodec, run from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDIES = ["huge_image", "level_extension", "synthesis_finetune", "top_end", "transform_ceiling"]


def test_tools_are_not_installed():
    text = (ROOT / "pyproject.toml").read_text()
    packages = next(line for line in text.splitlines() if line.startswith("packages = "))
    assert "lcodec.bench" in packages and "tools" not in packages
    assert '= "tools"' not in text


def test_every_study_runs_as_a_module_from_the_repository_root():
    # One process imports them all (each pulls in torch); `--help` of one proves the `python -m` form.
    imports = "; ".join(f"import tools.{name}" for name in STUDIES)
    done = subprocess.run([sys.executable, "-c", imports], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "tools.level_extension", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "--levels" in done.stdout


def test_gpu_script_points_at_this_tree():
    script = (ROOT / "tools" / "gpu_checks.sh").read_text()
    assert "bash tools/gpu_checks.sh" in script
    for pkg in ("codec", "entropy_models", "cli", "bench"):
        assert (ROOT / pkg / "__init__.py").is_file()  # what the script's shim links as lcodec.<pkg>
    done = subprocess.run(["bash", "-n", str(ROOT / "tools" / "gpu_checks.sh")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
