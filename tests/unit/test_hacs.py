"""The repository against HACS's rules for an AppDaemon app, and the pack's own folder.

HACS (``custom_components/hacs/utils/validate.py``, ``repositories/appdaemon.py``) reads
``hacs.json`` against HACS_MANIFEST_JSON_SCHEMA (only ``name`` required, no other keys than
the ones below), takes the first folder under ``apps/`` and copies it, alone, to
``<HA config>/appdaemon/apps/<repository name>/``. So the pack must be that one folder and
must import nothing from outside it.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "apps" / "growatt_thor"
PACKAGE = "growatt_thor"

# HACS_MANIFEST_JSON_SCHEMA: key -> type (vol.PREVENT_EXTRA: nothing else)
HACS_KEYS = {"content_in_root": bool, "country": (str, list), "filename": str, "hacs": str,
             "hide_default_branch": bool, "homeassistant": str, "persistent_directory": str,
             "render_readme": bool, "zip_release": bool, "name": str}
# what AppDaemon itself brings, and what requirements.txt adds
PROVIDED = {"appdaemon", "aiohttp", "pydantic", "yaml"}


def test_hacs_json_has_only_keys_hacs_knows():
    manifest = json.loads((REPO / "hacs.json").read_text())
    assert isinstance(manifest.get("name"), str) and manifest["name"]
    for key, value in manifest.items():
        assert key in HACS_KEYS, f"hacs.json: HACS refuses the key {key!r}"
        assert isinstance(value, HACS_KEYS[key]), f"hacs.json: {key} must be {HACS_KEYS[key]}"
    assert manifest.get("content_in_root") is not True  # the pack is under apps/


def test_exactly_one_app_folder_and_the_package_inside_it():
    folders = [p for p in (REPO / "apps").iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert folders == [APP], f"HACS takes only the first folder under apps/: {folders}"
    assert [p.name for p in (REPO / "apps").iterdir() if p.is_file()] == []
    # HACS names the installed folder after the repository (hyphens and all), so the
    # folder is not the package: the package is inside it, and AppDaemon puts the
    # folder on sys.path ("module: growatt_thor.hub" works wherever HACS puts it).
    assert not (APP / "__init__.py").exists()
    assert (APP / PACKAGE / "__init__.py").exists()


def requirements() -> list[str]:
    lines = (APP / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def test_requirements_are_the_project_dependencies_appdaemon_does_not_bring():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    name = re.compile(r"^[A-Za-z0-9_.\-]+")
    extra = [d for d in deps if name.match(d).group(0).lower() not in ("appdaemon", "pyyaml",
                                                                      "pydantic")]
    assert requirements() == extra


def test_readme_addon_packages_are_the_requirements():
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- addon:options -->", 1)[1].split("```yaml", 1)[1].split("```")[0]
    listed = [ln.strip()[2:] for ln in block.splitlines() if ln.strip().startswith("- ")]
    assert listed == requirements()


def imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import in a file; level 0 is absolute."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(0, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.level, node.module or ""))
    return out


def test_the_pack_imports_nothing_from_outside_its_folder():
    allowed = set(sys.stdlib_module_names) | PROVIDED | {
        re.match(r"^[A-Za-z0-9_]+", r).group(0) for r in requirements()} | {PACKAGE}
    files = sorted((APP / PACKAGE).rglob("*.py"))
    assert len(files) > 20
    for f in files:
        depth = len(f.relative_to(APP).parts) - 1  # packages above the file, within APP
        for level, module in imports(f):
            where = f"{f.relative_to(REPO)} imports {'.' * level}{module}"
            if level:
                assert level <= depth, f"{where}: above the pack's folder"
            else:
                assert module.split(".")[0] in allowed, f"{where}: not in the pack's folder"


def test_the_pack_says_the_version_of_pyproject():
    import tomllib

    from growatt_thor import __version__

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]
