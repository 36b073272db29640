"""The ``fiks-arkiv`` archive adapter: letters to the kommune's archive over KS Fiks Arkiv
on Fiks IO. ``adapter.py`` sends a letter and turns replies into facts, ``encode.py`` spells
the registration as ``arkivmelding.xml`` and reads the kvittering (pure), ``options.py``
reads the options and builds the Fiks IO parts (``svarinn_daemon.fiksio``)."""

from __future__ import annotations

from svarinn_daemon.adapters.fiksarkiv.adapter import FiksArkivArchive
from svarinn_daemon.adapters.fiksarkiv.options import create_adapter

__all__ = ["FiksArkivArchive", "create_adapter"]
