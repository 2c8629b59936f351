"""The wheel carries everything a non-editable install needs: core, plugins, configs, demo."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """Built from a copy of the tree (what git would check out), so the build leaves no
    ``build/`` or ``*.egg-info`` in the working tree."""
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source") / "evalkit"
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "outputs", "multirun", ".pytest_cache", "node_modules")
    shutil.copytree(REPO, source, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(out), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    (path,) = out.glob("evalkit-*.whl")
    with zipfile.ZipFile(path) as zf:
        return set(zf.namelist()), zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()


def _expected_sources():
    for py in (REPO / "evalkit").rglob("*.py"):
        yield py.relative_to(REPO).as_posix()
    for py in (REPO / "plugins").rglob("*.py"):
        yield py.relative_to(REPO / "plugins").as_posix()
    for py in (REPO / "hydra_plugins").rglob("*.py"):
        yield py.relative_to(REPO).as_posix()


def test_every_module_is_in_the_wheel(wheel):
    names, _ = wheel
    missing = [p for p in _expected_sources() if "__pycache__" not in p and p not in names]
    assert not missing, f"not packaged (add the package to pyproject's packages list): {missing}"


def test_configs_and_demo_assets_are_in_the_wheel(wheel):
    names, _ = wheel
    for yaml in (REPO / "conf").rglob("*.yaml"):
        assert "evalkit/conf/" + yaml.relative_to(REPO / "conf").as_posix() in names
    for asset in (REPO / "evalkit" / "demo").rglob("*"):
        if asset.is_file() and "__pycache__" not in asset.parts:
            assert asset.relative_to(REPO).as_posix() in names


def test_console_scripts_and_plugin_entry_points(wheel):
    _, entry_points = wheel
    for script in ("evalkit = evalkit.cli:main", "evalkit-plugins", "evalkit-compare", "evalkit-merge"):
        assert script in entry_points
    for plugin in ("replay", "parsers", "metrics", "api", "hf", "vllm", "lightning"):
        assert f"{plugin} = evalkit_{plugin}.plugin" in entry_points
