"""localstripe is GPL-3.0: a test-time server the suite starts as its own process. Flint never imports it,
and an installed Flint never requires it (only the `test` extra names it); the stripe package is an
optional extra too."""
from __future__ import annotations

import ast
from importlib.metadata import requires

from support import ROOT


def test_no_module_of_flint_imports_localstripe():
    for path in (ROOT / "server").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] == "localstripe" for name in names), path


def test_an_installed_flint_requires_neither_localstripe_nor_stripe_outside_their_extras():
    needs = requires("flint-checkout") or []
    for requirement in needs:
        name = requirement.split(";")[0].strip().lower()
        if name.startswith(("localstripe", "stripe")):
            marker = requirement.split(";", 1)[1] if ";" in requirement else ""
            assert "extra ==" in marker, requirement
            if name.startswith("localstripe"):
                assert "extra == \"test\"" in marker or "extra == 'test'" in marker, requirement
