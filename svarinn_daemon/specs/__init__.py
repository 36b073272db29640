"""The public interface definitions the daemon runs on, shipped as package data.

``gi-arkiv-1.1/``: GI-Arkiv 1.1's WSDLs and XSDs (``PROVENANCE.md`` says where each file
comes from and under which licence). The WSDLs import the schemas by URLs that no longer
answer; :func:`spec_file` maps any such location to the shipped file of the same name, so
neither the adapter nor the local archive ever reaches the network for a schema.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

__all__ = ["GI_ARKIV", "spec_directory", "spec_file"]

GI_ARKIV = "gi-arkiv-1.1"


def spec_directory(name: str) -> Path:
    """The directory of one shipped specification (``GI_ARKIV``)."""
    return Path(str(resources.files(__name__) / name))


def spec_file(name: str, location: str) -> Path:
    """The shipped file of specification ``name`` that ``location`` (a URL or a file name)
    names by its last path segment; ValueError for anything else."""
    base = PurePosixPath(urlparse(location).path).name
    path = spec_directory(name) / base
    if not base or base.startswith(".") or not path.is_file():
        raise ValueError(f"{location!r} is not a shipped file of {name}")
    return path
