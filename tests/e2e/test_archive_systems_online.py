"""``check-config --online`` with each archive-system adapter: it reaches the local archive,
authenticates and finds the arkivdel (GI-Arkiv, Noark 5) or the custom field's search
(Public 360); a wrong arkivdel or credential is named, and exits 1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from svarinn_daemon.archives.giarkiv import LocalGiArkiv
from svarinn_daemon.archives.noark5 import LocalNoark5
from svarinn_daemon.archives.p360 import LocalP360
from tests.support.daemon_harness import harness
from tests.support.programs import use_archive

SECRET = "online-secret-3b9f"


@contextmanager
def gi_arkiv(secret: Path) -> Iterator[tuple[str, str]]:
    with LocalGiArkiv(password=SECRET) as arkiv:
        table = f"""[archives.default]
adapter = "gi-arkiv"
url = "{arkiv.url}"
innsyn_url = "{arkiv.innsyn_url}"
username = "svarinn"
password_file = "{secret}"
arkivdel = "SAK"
timeout = "10s"
"""
        yield table, 'arkivdel = "SAK"'


@contextmanager
def p360(secret: Path) -> Iterator[tuple[str, str]]:
    with LocalP360(authkey=SECRET) as archive:
        table = f"""[archives.default]
adapter = "p360"
url = "{archive.url}"
authkey_file = "{secret}"
external_key_field = "SvarUtForsendelseId"
timeout = "10s"
"""
        yield table, 'external_key_field = "SvarUtForsendelseId"'


@contextmanager
def noark5(secret: Path) -> Iterator[tuple[str, str]]:
    with LocalNoark5(token=SECRET) as archive:
        table = f"""[archives.default]
adapter = "noark5"
url = "{archive.url}"
token_file = "{secret}"
arkivdel = "Sakarkiv"
timeout = "10s"
"""
        yield table, 'arkivdel = "Sakarkiv"'


@pytest.mark.parametrize("system", [gi_arkiv, p360, noark5], ids=["gi-arkiv", "p360", "noark5"])
def test_check_config_online_reaches_each_archive_system(
    tmp_path: Path, system: Callable[[Path], object]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    with system(secret) as (table, setting), harness(tmp_path / "h") as h:  # type: ignore[attr-defined]
        use_archive(h, table)
        ok = h.cli("check-config", "--quiet", "--online")
        assert ok.returncode == 0, ok.stderr
        assert "archive default: answers (its probe passed: nothing stored)" in ok.stderr
        wrong = setting.replace('"SAK"', '"NOPE"').replace('"Sakarkiv"', '"NOPE"')
        wrong = wrong.replace('"SvarUtForsendelseId"', '"NoSuchField"')
        h.config_path.write_text(h.config_path.read_text().replace(setting, wrong))
        bad = h.cli("check-config", "--quiet", "--online")
        assert bad.returncode == 1
        (line,) = [x for x in bad.stderr.splitlines() if x.startswith("archive default:")]
        assert line.startswith("archive default: ArchiveError: ")
        assert "'NOPE'" in line or "Unknown field: NoSuchField" in line
        assert SECRET not in bad.stderr + ok.stderr
