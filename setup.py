"""Packages for setuptools (everything else is in pyproject.toml): the import package `flint` is the
server/ directory, and two data folders kept at the top of the repository travel inside it."""
from setuptools import find_packages, setup

setup(
    packages=["flint", *(f"flint.{name}" for name in find_packages("server")), "flint.hosted_pages",
              "flint.widget_dist"],
    package_dir={"flint": "server", "flint.hosted_pages": "hosted_pages", "flint.widget_dist": "widget/dist"},
)
