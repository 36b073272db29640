"""README and docs/ stay true: every relative link and anchor resolves, and every command
shown as ``svarinn-daemon ...`` exists with the options shown (checked against the real
argument parser). The last tests feed the checkers broken text: they must see it."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from svarinn_daemon.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
GLOBAL_WITH_VALUE = {"--config", "--log-level", "--log-format"}
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*```")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose_lines(text):
        if m := re.match(r"^#{1,6} (.+)$", line):
            base = slug(m.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def _prose_lines(text: str) -> Iterator[str]:
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def broken_links(page: Path, text: str) -> list[str]:
    wrong: list[str] = []
    for line in _prose_lines(text):
        for target in _LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked offline
            path_part, _, anchor = target.partition("#")
            where = (page.parent / path_part).resolve()
            if path_part and not where.exists():
                wrong.append(f"{page.name}: {target}: no such file")
                continue
            headings = anchors(where.read_text() if path_part else text)
            if anchor and (where.suffix == ".md" or not path_part) and anchor not in headings:
                wrong.append(f"{page.name}: {target}: no such heading")
    return wrong


def _command_texts(text: str) -> Iterator[str]:
    """Code lines (fenced or indented) and inline code spans that start with the command."""
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        candidates = [line.strip()] if fenced or line.startswith("    ") else []
        candidates += re.findall(r"`([^`]+)`", line) if not fenced else []
        for candidate in candidates:
            candidate = re.sub(r"^(\$ |sudo (-u \S+ )?)", "", candidate.strip())
            if candidate.startswith("svarinn-daemon "):
                yield candidate


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def wrong_commands(text: str) -> list[str]:
    parser = build_parser()
    wrong: list[str] = []
    for shown in _command_texts(text):
        if "[" in shown or "|" in shown:
            continue  # a synopsis, not a command
        try:
            words = shlex.split(shown.split(" #", 1)[0], comments=False)[1:]
        except ValueError:
            words = shown.split()[1:]
        words = [w for w in words if w != "\\"]
        current, options = parser, _options(parser)
        while words:
            word = words.pop(0)
            if word in GLOBAL_WITH_VALUE:
                words[:1] = []
            elif word.startswith("--"):
                if word.split("=", 1)[0] not in options:
                    wrong.append(f"{shown}: no option {word} here")
            elif word in (subs := _subcommands(current)):
                current = subs[word]
                options = _options(current) | _options(parser)
            elif current is parser:
                wrong.append(f"{shown}: no command {word!r}")
                break
    return wrong


def test_every_relative_link_and_anchor_resolves() -> None:
    wrong = [x for page in PAGES for x in broken_links(page, page.read_text("utf-8"))]
    assert not wrong, "\n".join(wrong)


def test_every_command_shown_exists_with_its_options() -> None:
    shown = sum(len(list(_command_texts(p.read_text("utf-8")))) for p in PAGES)
    assert shown > 10  # the checker sees the commands at all
    wrong = [x for page in PAGES for x in wrong_commands(page.read_text("utf-8"))]
    assert not wrong, "\n".join(wrong)


def test_every_prometheus_alert_links_to_its_runbook() -> None:
    import yaml

    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    runbooks = anchors((REPO / "docs" / "alerts.md").read_text("utf-8"))
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/alerts.md#{slug(rule['alert'])}", rule["alert"]
        assert slug(rule["alert"]) in runbooks, rule["alert"]


def test_readme_stays_short_and_points_to_every_page() -> None:
    text = (REPO / "README.md").read_text("utf-8")
    assert len(text.splitlines()) <= 200
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in text, page.name


# --- the checkers checked ----------------------------------------------------------------


def test_the_checkers_see_broken_links_and_commands(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## Real heading: yes\n")
    text = (
        "# Page\n\n[ok](other.md#real-heading-yes) [ok](#page) [web](https://example.org)\n"
        "[gone](missing.md) [no anchor](other.md#unreal) [self](#nowhere)\n\n"
        "    svarinn-daemon --config x.toml show 12 --json\n"
        "    svarinn-daemon shwo 12\n"
        "Run `svarinn-daemon check-config --onlien` and `svarinn-daemon list --limit 3`.\n"
    )
    assert broken_links(page, text) == [
        "page.md: missing.md: no such file",
        "page.md: other.md#unreal: no such heading",
        "page.md: #nowhere: no such heading",
    ]
    assert wrong_commands(text) == [
        "svarinn-daemon shwo 12: no command 'shwo'",
        "svarinn-daemon check-config --onlien: no option --onlien here",
    ]
