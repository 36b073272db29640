"""The package's layers point one way, as docs/architecture.md draws them.

Every import of a ``svarinn_daemon`` module, wherever it stands (inside functions and
``TYPE_CHECKING`` blocks too, relative ones resolved, package ``__init__`` files included),
must go from a package to one it may use. ``migrations/`` (beside the package, shipped
into it) may use the ledger's models only. Inside ``letter/`` the stage modules do not call
each other sideways: only the pipeline orders the steps (``letter/__init__.py``).
In ``tests/`` no module imports from a ``test_*.py`` module: what tests share lives in
``tests/support/`` (or a ``conftest.py``), so running one test file never runs another's
import-time code, and a helper is found where helpers are.
The last tests feed the checkers small trees that break each rule: they must see them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "svarinn_daemon"
MIGRATIONS = REPO / "migrations"
TESTS = REPO / "tests"

SHARED = frozenset(
    {
        "",
        "common",
        "errors",
        "logs",
        "keys",
        "maskinporten",
        "netstream",
        "plugins",
        "policies",
        "replies",
        "specs",
    }
)
BELOW_LETTER = SHARED | {"config", "cms", "fiksio", "svarinn", "ledger", "adapters"}
ALLOWED: dict[str, frozenset[str]] = {
    "": frozenset(),  # the package's own __init__: nothing
    "common": frozenset(),
    "errors": frozenset(),
    "logs": frozenset(),
    "policies": frozenset(),
    "netstream": frozenset(),
    "specs": frozenset(),
    "replies": frozenset(),
    "keys": frozenset({"errors"}),
    "maskinporten": frozenset({"errors", "logs"}),
    "plugins": frozenset({"errors"}),
    "config": SHARED,
    "cms": SHARED,
    "svarinn": SHARED | {"config"},
    "ledger": SHARED | {"config"},
    "fiksio": SHARED | {"cms"},
    "adapters": SHARED | {"config", "fiksio"},
    "alerts": SHARED | {"config", "ledger"},
    "letter": BELOW_LETTER,
    "service": BELOW_LETTER | {"alerts", "letter"},
    "simulator": SHARED | {"config", "cms", "svarinn"},
    "archives": SHARED | {"cms", "fiksio"},
    "testing": BELOW_LETTER | {"alerts", "letter", "service", "simulator", "archives"},
    "cli": BELOW_LETTER | {"alerts", "letter", "service", "simulator", "archives", "testing"},
    "__main__": frozenset({"cli"}),
}
# Modules (not packages) that migrations may import: the tables they build, nothing else.
MIGRATIONS_MAY_USE = frozenset({"svarinn_daemon.ledger.models"})


def _migration_may_use(module: str) -> bool:
    return any(module == m or module.startswith(f"{m}.") for m in MIGRATIONS_MAY_USE)


# Inside letter/: who may use which sibling. The pipeline orders the steps, stages runs the
# two heavy ones for it, verify reads zips with ziputil (which writes as the spool does);
# the records passed around (work, events) and the pure routing and retry rules may be used
# where they are needed. Anything else would be a stage calling another sideways.
LETTER_SIBLINGS: dict[str, frozenset[str]] = {
    "pipeline": frozenset(
        {
            "account",
            "durable",
            "events",
            "inflight",
            "leases",
            "results",
            "retry",
            "spool",
            "stages",
        }
    ),
    "replies": frozenset({"events", "retry"}),
    "stages": frozenset({"account", "decode", "events", "inflight", "spool", "unzip", "verify"}),
    "unzip": frozenset({"filmetadata", "spool", "ziputil", "zipevents", "zipstream"}),
    "zipstream": frozenset({"zipevents"}),
    "verify": frozenset({"filmetadata", "ziputil"}),
    "filmetadata": frozenset({"ziputil"}),
    "ziputil": frozenset({"spool", "zipdir"}),
    "events": frozenset({"results", "retry"}),
    "account": frozenset({"routing"}),
}


def _part(module: str) -> str:
    """``svarinn_daemon.letter.pipeline`` -> ``letter``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_of(path: Path, root: Path) -> str:
    """The dotted name of ``path`` inside the package rooted at ``root``."""
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _from_module(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` names, a relative one resolved against ``package``."""
    base = node.module or ""
    if node.level:
        anchor = package.split(".")
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, base] if base else anchor)
    return base


def _imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """Every svarinn_daemon module ``path`` imports, relative imports resolved."""
    package = _module_of(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = _from_module(node, package)
            if base == "svarinn_daemon" or base.startswith("svarinn_daemon."):
                # A name may be a submodule (``from ..letter import work``): keep it.
                yield from ((node.lineno, f"{base}.{a.name}") for a in node.names)
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("svarinn_"))


def violations(package: Path, migrations: Path | None = None) -> list[str]:
    """Every import in ``package`` (and ``migrations``) against the rules above."""
    wrong: list[str] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        owner = "" if relative == Path("__init__.py") else relative.parts[0].removesuffix(".py")
        for line, module in _imports(path, package):
            target = _part(module)
            if target == "__version__" or (target == owner and owner):
                if owner == "letter":
                    wrong += _sideways(relative, line, module)
                continue
            if target not in ALLOWED.get(owner, frozenset()):
                wrong.append(f"{relative}:{line}: {owner or '(package)'} -> {target} ({module})")
    for path in sorted(migrations.rglob("*.py")) if migrations else ():
        for line, module in _imports(path, package):
            if module.startswith("svarinn_daemon") and not _migration_may_use(module):
                wrong.append(f"migrations/{path.relative_to(migrations)}:{line}: -> {module}")
    return wrong


def _is_test_module(module: str) -> bool:
    return module.rpartition(".")[2].startswith("test_")


def imports_of_test_modules(tests: Path) -> list[str]:
    """Every import, anywhere under ``tests``, of a ``test_*.py`` module or a name from one."""
    wrong: list[str] = []
    for path in sorted(tests.rglob("*.py")):
        me = _module_of(path, tests)
        package = me if path.name == "__init__.py" else me.rpartition(".")[0]
        relative = path.relative_to(tests)
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = _from_module(node, package)
                # ``from tests.x.test_y import h`` and ``from tests.x import test_y`` alike
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if _is_test_module(target) and target != me:
                    wrong.append(f"{relative}:{node.lineno}: imports {target}")
                    break
    return wrong


def _sideways(relative: Path, line: int, module: str) -> list[str]:
    me = relative.stem
    if len(relative.parts) < 2 or me == "__init__":
        return [f"{relative}:{line}: letter/__init__ imports {module}"]
    sibling = module.split(".")[2] if module.count(".") >= 2 else ""
    if sibling in LETTER_SIBLINGS.get(me, frozenset()):
        return []
    return [f"{relative}:{line}: letter.{me} calls letter.{sibling} sideways ({module})"]


def test_every_package_is_placed() -> None:
    tops = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    tops.discard("__init__")
    assert tops <= set(ALLOWED), f"place these in ALLOWED: {sorted(tops - set(ALLOWED))}"


def test_imports_point_one_way() -> None:
    wrong = violations(PACKAGE, MIGRATIONS)
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_test_module_imports_another() -> None:
    wrong = imports_of_test_modules(TESTS)
    assert not wrong, "move what these share to tests/support/:\n" + "\n".join(wrong)


# --- the checker checked ---------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    package = tmp_path / "svarinn_daemon"
    for name, text in {"__init__.py": "", "errors.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for directory in {p.parent for p in package.rglob("*.py")}:
        (directory / "__init__.py").touch()
    return package


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "ledger/models.py": "from svarinn_daemon.errors import X\n",
            "letter/pipeline.py": "from .stages import run\nfrom . import results\n",
            "letter/stages.py": "from svarinn_daemon.letter.verify import open_letter\n",
        },
    )
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "env.py").write_text("from svarinn_daemon.ledger.models import metadata\n")
    assert violations(package, migrations) == []


def test_a_relative_import_against_the_layers_is_seen(tmp_path: Path) -> None:
    package = _tree(tmp_path, {"ledger/queries.py": "from ..letter import pipeline\n"})
    assert violations(package) == [
        "ledger/queries.py:1: ledger -> letter (svarinn_daemon.letter.pipeline)"
    ]
    package = _tree(tmp_path / "2", {"ledger/queries.py": "from ..service.daemon import D\n"})
    assert violations(package) == [
        "ledger/queries.py:1: ledger -> service (svarinn_daemon.service.daemon.D)"
    ]


def test_an_import_in_an_init_is_seen(tmp_path: Path) -> None:
    package = _tree(tmp_path, {"__init__.py": "from svarinn_daemon.cli import main\n"})
    assert violations(package) == ["__init__.py:1: (package) -> cli (svarinn_daemon.cli.main)"]
    package = _tree(tmp_path / "2", {"ledger/__init__.py": "from ..letter import results\n"})
    assert violations(package) == [
        "ledger/__init__.py:1: ledger -> letter (svarinn_daemon.letter.results)"
    ]


def test_a_sideways_call_between_stages_is_seen(tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "letter/decode.py": "from svarinn_daemon.letter.verify import open_letter\n",
            "letter/spool.py": "def f():\n    from .pipeline import Pipeline\n",
        },
    )
    assert violations(package) == [
        "letter/decode.py:1: letter.decode calls letter.verify sideways "
        "(svarinn_daemon.letter.verify.open_letter)",
        "letter/spool.py:2: letter.spool calls letter.pipeline sideways "
        "(svarinn_daemon.letter.pipeline.Pipeline)",
    ]


def test_migrations_may_use_the_models_only(tmp_path: Path) -> None:
    package = _tree(tmp_path, {})
    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "versions" / "0001.py").write_text(
        "from svarinn_daemon.ledger.states import State\n"
    )
    assert violations(package, migrations) == [
        "migrations/versions/0001.py:1: -> svarinn_daemon.ledger.states.State"
    ]


def test_an_import_from_another_test_module_is_seen(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    files = {
        "__init__.py": "",
        "support/__init__.py": "",
        "support/helpers.py": "def world(): ...\n",
        "a/__init__.py": "",
        "a/conftest.py": "from tests.a.test_two import world\n",
        "a/test_one.py": (
            "from tests.support.helpers import world\n"
            "from .test_two import world\n"
            "from . import test_two\n"
            "def f():\n    import tests.b.test_three\n"
        ),
        "a/test_two.py": "from tests.support import helpers\n",
        "b/__init__.py": "",
        "b/test_three.py": "from ..a.test_two import world\nfrom tests.a import test_two\n",
    }
    for name, text in files.items():
        path = tests / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert imports_of_test_modules(tests) == [
        "a/conftest.py:1: imports tests.a.test_two",
        "a/test_one.py:2: imports tests.a.test_two",
        "a/test_one.py:3: imports tests.a.test_two",
        "a/test_one.py:5: imports tests.b.test_three",
        "b/test_three.py:1: imports tests.a.test_two",
        "b/test_three.py:2: imports tests.a.test_two",
    ]
    (tests / "a" / "test_one.py").write_text("from tests.support.helpers import world\n")
    (tests / "a" / "conftest.py").write_text("from ..support import helpers\n")
    (tests / "b" / "test_three.py").write_text("import tests.support.helpers\n")
    assert imports_of_test_modules(tests) == []
