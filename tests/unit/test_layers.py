"""The package's shape: sub-packages by concern, each importing only those below it.

A newcomer can then read reglab bottom-up (base, auth, engine, images, registry, swarm, node), and
the notebook layer (``lab``) and the command line (``cli``) never leak into the core.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reglab"
#: Bottom to top: a module may import its own sub-package and those before it, never after.
LAYERS = ["base", "auth", "engine", "images", "registry", "swarm", "node", "lab", "cli"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; reglab imports by absolute name")
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "reglab" or n.startswith("reglab.")}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_sits_in_a_layer() -> None:
    flat = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert flat == [], f"modules outside a sub-package: {flat}"
    assert sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()) == sorted(
        LAYERS
    )


def test_imports_go_one_way_down() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        here = _layer(".".join(rel.parts))
        if here is None:  # reglab/__init__.py and __main__.py sit above everything
            continue
        for imported in _imports(path):
            there = _layer(imported)
            if imported == "reglab" or (there is not None and there > here):
                wrong.append(f"{rel} imports {imported}")
    assert wrong == []


def test_the_core_never_imports_the_notebook_layer_at_run_time() -> None:
    """Importing every core module pulls in no module of reglab.lab (lazy imports included)."""
    core = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for layer in LAYERS[: LAYERS.index("lab")]
        for p in (PACKAGE / layer).rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for name in {core!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'reglab.lab' or m.startswith('reglab.lab.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"the core imported the notebook layer: {out.stdout}"
