"""No header value the ``http`` adapter writes may end its line (issue #24, item 2), and the
Authorization value is no exception: a token file with a second line passed check-config, and
every request then failed at httpx ("Illegal header value ..."), each letter retried for ever.
It is refused when the configuration is read, without printing it."""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon_harness import harness
from tests.support.fakes.sakssystem import SakServer
from tests.support.programs import http_archive, use_archive

TOKEN = "s3cr3t-t0ken-of-the-sakssystem"


def test_an_authorization_value_with_a_line_break_is_refused_unprinted(tmp_path: Path) -> None:
    with SakServer() as server, harness(tmp_path / "h") as h:
        token = h.config_path.parent / "sak-token"
        token.write_text(f"Bearer {TOKEN}\nX-Injected: 1\n")
        use_archive(h, http_archive(server.url, 'authorization_file = "sak-token"'))
        h.sim.generate(1, 10_000)
        checked = h.cli("check-config")
        assert checked.returncode == 2
        assert "archives.default.authorization" in checked.stderr
        assert "CR, LF or NUL" in checked.stderr
        done = h.cli("--log-format", "json", "poll-once")
        assert done.returncode == 2
        for text in (checked.stdout, checked.stderr, done.stdout, done.stderr):
            assert TOKEN not in text
        assert server.state.letters == {}
        token.write_text(f"Bearer {TOKEN}\n")  # one line, as documented: works
        assert h.cli("check-config", "--quiet").returncode == 0
        assert h.until_done() == 0
        assert len(server.state.letters) == 1
