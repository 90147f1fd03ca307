"""pyproject.toml declares what the code imports, each in the group that imports it: nothing unused, and
nothing the installed code needs but a plain `pip install lcodec` would leave out."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
#: the folders whose imports each dependency group serves (the groups are cumulative: bench adds to core)
GROUPS = {"core": ("codec", "entropy_models", "cli"), "bench": ("bench",), "dev": ("tests",)}
#: dependencies that are commands, not imports: the script that runs each one
COMMANDS = {"ruff": ".ci/run"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = {"core": project["dependencies"], **project["optional-dependencies"]}
    out = {}
    for group, entries in reqs.items():
        names = {_norm(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in entries}
        out[group] = names - {"lcodec"}
    return out


def _imported_distributions(folders: tuple[str, ...]) -> dict[str, set[str]]:
    """Distribution -> files of `folders` that import it (top-level third-party imports, lazy ones too)."""
    dists = metadata.packages_distributions()
    local = {p.name for p in ROOT.iterdir()} | {p.stem for p in ROOT.glob("*/*.py")} | {"lcodec"}
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in local:
                        continue
                    for dist in dists.get(top, [f"<not installed: {top}>"]):
                        found.setdefault(_norm(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_declared_dependency_is_imported_by_its_group():
    declared = _declared()
    assert set(declared) == set(GROUPS)
    for group, names in declared.items():
        used = _imported_distributions(GROUPS[group])
        commands = {n for n, script in COMMANDS.items() if n in (ROOT / script).read_text()}
        unused = sorted(names - set(used) - commands)
        assert not unused, f"{group} declares dependencies its code never imports: {unused}"


def test_the_installed_code_imports_only_what_its_groups_declare():
    declared = _declared()
    allowed: set[str] = set()
    for group in ("core", "bench"):
        allowed |= declared[group]
        used = _imported_distributions(GROUPS[group])
        missing = {d: sorted(files)[:3] for d, files in used.items() if d not in allowed}
        assert not missing, f"{group} code imports undeclared dependencies: {missing}"


def test_the_codec_and_the_cli_do_not_import_compressai():
    """Importing compressai (its datasets pull torch_geometric, pandas, torchvision) nearly doubles the CPU
    time of an `lcodec decode`: only the cai-* bench codecs load it, when used."""
    import subprocess

    code = ("import sys, lcodec.codec.image_codec, lcodec.codec.video_codec, lcodec.codec.training.loop, "
            "lcodec.cli.main, lcodec.bench.image_codecs; "
            "print(sorted(m for m in sys.modules if m.startswith('compressai')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_compressai_the_cai_codecs_are_unavailable_in_one_line(monkeypatch):
    from lcodec.bench.errors import CodecUnavailable
    from lcodec.bench.image_codecs import make_image_codec

    monkeypatch.setitem(sys.modules, "compressai.zoo", None)  # what an install without the bench extra sees
    with pytest.raises(CodecUnavailable, match=r"compressai is not installed.*lcodec\[bench\]") as err:
        make_image_codec("cai-mbt2018-mean")
    assert "\n" not in str(err.value)
