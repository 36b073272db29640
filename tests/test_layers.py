"""The package's layers point one way, as README's architecture section draws them.

Every ``import`` of a ``svarinn_daemon`` module, wherever it stands (inside functions and
``TYPE_CHECKING`` blocks too), must go from a package to one it may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "svarinn_daemon"

SHARED = frozenset({"", "common", "errors", "logs", "keys", "plugins", "policies"})
BELOW_LETTER = SHARED | {"config", "cms", "svarinn", "ledger", "adapters"}
ALLOWED: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "errors": frozenset(),
    "logs": frozenset(),
    "policies": frozenset(),
    "keys": frozenset({"errors"}),
    "plugins": frozenset({"errors"}),
    "config": SHARED,
    "cms": SHARED,
    "svarinn": SHARED | {"config"},
    "ledger": SHARED | {"config"},
    "adapters": SHARED | {"config"},
    "alerts": SHARED | {"config", "ledger"},
    "letter": BELOW_LETTER,
    "service": BELOW_LETTER | {"alerts", "letter"},
    "simulator": SHARED | {"config", "cms", "svarinn"},
    "testing": BELOW_LETTER | {"alerts", "letter", "service", "simulator"},
    "cli": BELOW_LETTER | {"alerts", "letter", "service", "simulator", "testing"},
    "__main__": frozenset({"cli"}),
    "migrations": frozenset(),
}


def _part(module: str) -> str:
    """``svarinn_daemon.letter.pipeline`` -> ``letter``; the package itself -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text("utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "svarinn_daemon":
                found += [(node.lineno, f"svarinn_daemon.{a.name}") for a in node.names]
            elif node.module.startswith("svarinn_daemon."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("svarinn_")]
    return found


def test_every_package_is_placed() -> None:
    tops = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    tops.discard("__init__")
    assert tops <= set(ALLOWED), f"place these in ALLOWED: {sorted(tops - set(ALLOWED))}"


def test_imports_point_one_way() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        owner = relative.parts[0].removesuffix(".py")
        if owner == "__init__":
            continue
        for line, module in _imports(path):
            target = _part(module)
            if target not in (owner, "__version__") and target not in ALLOWED[owner]:
                wrong.append(f"{relative}:{line}: {owner} -> {target} ({module})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)
