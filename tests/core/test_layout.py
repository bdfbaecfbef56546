"""The package layout's rules: the shipped code never imports bench/ or tests/, and no module imports another's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = ("omr_core", "dashboard")


def _py_files() -> list[Path]:
    return [p for pkg in SHIPPED for p in sorted((REPO / pkg).rglob("*.py"))]


def test_omr_core_never_imports_bench_or_tests() -> None:
    code = (
        "import importlib, pkgutil, sys, omr_core\n"
        "for m in pkgutil.walk_packages(omr_core.__path__, 'omr_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('bench', 'tests'))\n"
        "print(len([k for k in sys.modules if k.startswith('omr_core.')]), bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    n_modules = int(res.stdout.split()[0])
    assert n_modules > 80  # every module was really imported


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = []
    for p in _py_files():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in SHIPPED:
                offenders += [f"{p.relative_to(REPO)}:{node.lineno} {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []

