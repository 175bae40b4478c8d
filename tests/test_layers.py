"""The layers contract (pyproject.toml, checked by `lint-imports` in make test) names every part of
flint, so a new part cannot slip past it, and it holds."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _parts() -> set[str]:
    """Every package and top-level module of flint (the server/ directory)."""
    server = ROOT / "server"
    found = {f"flint.{p.name}" for p in server.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    found |= {f"flint.{p.stem}" for p in server.glob("*.py") if p.stem != "__init__"}
    return found


def test_the_layers_contract_names_every_part_once():
    listed = [name.strip() for row in _contracts()["layers"]["layers"] for name in re.split(r"[|:]", row)]
    assert len(listed) == len(set(listed)), "a part is listed twice"
    assert set(listed) == _parts(), (f"parts missing from the contract: {sorted(_parts() - set(listed))}; "
                                     f"listed but gone: {sorted(set(listed) - _parts())}")


def test_every_domain_with_a_store_is_a_container():
    containers = set(_contracts()["domains"]["containers"])
    with_store = {f"flint.{p.parent.name}" for p in (ROOT / "server").glob("*/store.py")}
    assert with_store <= containers, sorted(with_store - containers)


def test_lint_imports_keeps_every_contract():
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout
