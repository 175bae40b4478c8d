"""Where the data folders Flint ships are: inside the installed package (a wheel puts hosted_pages/ and
the built widget there, see setup.py), or at the top of the source tree (an editable install or a
checkout, where server/ is the package)."""
from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def data_dir(installed: str, source: str) -> Path:
    """``installed``: the folder's name inside the package; ``source``: its path in the repository."""
    for candidate in (PACKAGE / installed, PACKAGE.parent / source):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"Flint's {source}/ is missing: a source checkout builds it with `make widget`; "
                       f"a wheel carries it as flint/{installed}")


def hosted_pages() -> Path:
    return data_dir("hosted_pages", "hosted_pages")


def widget_dist() -> Path:
    return data_dir("widget_dist", "widget/dist")
