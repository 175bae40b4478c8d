"""Packages for setuptools (everything else is in pyproject.toml): the import package `flint` is the
server/ directory, and two data folders kept at the top of the repository travel inside it: the buyer
pages (hosted_pages/) and the built widget (widget/dist/, committed, checked against widget/src).
Every package under server/ ships, the QA kit flint.testing too (its pytest plugin is the pytest11 entry
point in pyproject.toml; Playwright, which its FlintCheckout drives, is the merchant's test dependency)."""
from pathlib import Path

from setuptools import find_packages, setup

DATA = {"flint.hosted_pages": "hosted_pages", "flint.widget_dist": "widget/dist"}
DATA = {name: folder for name, folder in DATA.items() if Path(folder).is_dir()}

setup(
    packages=["flint", *(f"flint.{name}" for name in find_packages("server")), *DATA],
    package_dir={"flint": "server", **DATA},
)
