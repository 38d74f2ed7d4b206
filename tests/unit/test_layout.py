"""The house rules, checked statically: no import cycle, and no import that reaches up a layer.

Layers, bottom to top (a module may import its own layer and those below it):

0. ``rooms``: the pure domain; no network, database or web library at all.
1. ``server.db``: models, engine, repositories.
2. ``server.services`` (no aiohttp or Socket.IO), and ``server.config``/``server.appkeys``.
3. ``server.observability``: logs and metrics.
4. ``server.realtime``: Socket.IO.
5. ``server.rest``: HTTP routes (may read room state from ``server.realtime``).
6. ``server.app``, ``server.cli``, ``server.clients``, ``server.__main__``: wiring and clients.

Imports under ``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_ROOMS = {"aiohttp", "socketio", "engineio", "sqlalchemy", "redis", "asyncpg"}
WEB = {"aiohttp", "socketio", "engineio"}
LAYERS = [
    ("rooms", 0),
    ("server.db", 1),
    ("server.migrations", 1),
    ("server.services", 2),
    ("server.config", 2),
    ("server.appkeys", 2),
    ("server.music", 2),
    ("server.observability", 3),
    ("server.realtime", 4),
    ("server.rest", 5),
    ("server.app", 6),
    ("server.cli", 6),
    ("server.clients", 6),
    ("server.__main__", 6),
    ("server", 2),  # the package itself (its __init__)
]


def layer(module: str) -> int:
    for prefix, rank in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to tests/unit/test_layout.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found = {}
    for top in ("rooms", "server"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "versions" in path.parts and "migrations" in path.parts:
                continue  # Alembic revisions are loaded by Alembic, never imported
            found[module_name(path)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every module ``path`` imports at run time (top level or inside functions)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                out.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                out.add(child.module)
                for alias in child.names:  # `from server.db import repository`
                    if f"{child.module}.{alias.name}" in known:
                        out.add(f"{child.module}.{alias.name}")
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(path, known) for name, path in mods.items()}


def test_rooms_imports_no_network_database_or_server() -> None:
    bad = [
        (mod, imp)
        for mod, imps in graph().items()
        if mod.startswith("rooms")
        for imp in imps
        if imp.split(".")[0] in FORBIDDEN_IN_ROOMS or imp.split(".")[0] == "server"
    ]
    assert not bad, f"rooms must stay pure: {bad}"


def test_services_import_no_web_library() -> None:
    bad = [
        (mod, imp)
        for mod, imps in graph().items()
        if mod.startswith(("server.services", "server.db"))
        for imp in imps
        if imp.split(".")[0] in WEB
    ]
    assert not bad, f"services and db are not web code: {bad}"


def test_no_import_reaches_up_a_layer() -> None:
    g = graph()
    bad = [
        f"{mod} (layer {layer(mod)}) imports {imp} (layer {layer(imp)})"
        for mod, imps in g.items()
        for imp in imps
        if imp in g and imp != "server" and layer(imp) > layer(mod)
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle() -> None:
    g = {mod: {i for i in imps if i in modules() and i != mod} for mod, imps in graph().items()}
    # Packages import their __init__ implicitly; an __init__ importing a submodule is no cycle.
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                dfs(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            dfs(node)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(c) for c in cycles)


def test_every_package_is_installed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        module_name(init.parent / "__init__.py")
        for top in ("rooms", "server")
        for init in (ROOT / top).rglob("__init__.py")
    }
    missing = sorted(on_disk - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_server_top_level_stays_small() -> None:
    top = sorted(p.name for p in (ROOT / "server").glob("*.py"))
    assert len(top) <= 8, top


def server_modules() -> list[Path]:
    """Every module of ``server/`` but the Alembic revisions (generated, append-only)."""
    return [p for p in (ROOT / "server").rglob("*.py") if "versions" not in p.parts]


def test_server_modules_stay_small() -> None:
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for p in server_modules()
    }
    big = {name: lines for name, lines in sizes.items() if lines > 450}
    assert not big, f"split these into modules with one job each (≤ 450 lines): {big}"


def test_rooms_modules_stay_small() -> None:
    """The pure domain gets a looser limit than ``server/``: 600 lines a module."""
    sizes = {
        str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
        for p in (ROOT / "rooms").rglob("*.py")
    }
    big = {name: lines for name, lines in sizes.items() if lines > 600}
    assert not big, f"split these into modules with one job each (≤ 600 lines): {big}"


def test_server_modules_say_what_lives_there() -> None:
    missing = [
        str(p.relative_to(ROOT))
        for p in server_modules()
        if ast.get_docstring(ast.parse(p.read_text("utf-8"))) is None
        and p.read_text("utf-8").strip()
    ]
    assert not missing, f"give these a module docstring: {missing}"


def test_every_package_says_what_it_may_import() -> None:
    """Each package's ``__init__`` docstring says what lives there and what it may import."""
    vague = []
    for init in [*(ROOT / "server").rglob("__init__.py"), ROOT / "rooms" / "__init__.py"]:
        if "versions" in init.parts:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text("utf-8"))) or ""
        if "import" not in doc.lower():
            vague.append(str(init.relative_to(ROOT)))
    assert not vague, f"say what lives there and what it may import: {vague}"
