"""The package's shape, checked from its source: imports point down (no cycles, function-level imports
included), click only in the CLI layer, the CLI and the service use the public API, modules stay small."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bridge"
MAX_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every bridge module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # bridge.x.y -> bridge.x when y is a name, not a module
                t = t.rpartition(".")[0]
            if t.startswith("bridge") and t != name:
                out.add(t)
    return out


def _third_party(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


MODULES = _modules()
GRAPH = {name: _imports(path, name, MODULES) for name, path in MODULES.items()}


def _layer(name: str) -> str:
    if name.startswith("bridge.cli") or name == "bridge.__main__":
        return "cli"
    if name.startswith("bridge.serve"):
        return "serve"
    if name.startswith("bridge.worker"):
        return "worker"
    if name in ("bridge", "bridge.api"):
        return "api"
    return "core"


def test_the_walker_sees_function_level_imports():
    # bridge.api imports the encoder only inside load_encoder: the graph must still have the edge
    assert "bridge.encoder" in GRAPH["bridge.api"]
    assert "bridge.cli.documents" in GRAPH["bridge.cli"]


def test_no_import_cycles():
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(GRAPH[n]):
            if state.get(m) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(GRAPH):
        if n not in state:
            visit(n)


def test_imports_point_down():
    order = {"core": 0, "api": 1, "serve": 2, "worker": 2, "cli": 3}
    for name, targets in GRAPH.items():
        for t in targets:
            if name == "bridge" and t == "bridge.api":
                continue  # the package root re-exports the API lazily
            assert order[_layer(t)] <= order[_layer(name)], f"{name} imports {t}, a layer above it"


def test_cli_service_and_worker_use_only_the_public_api():
    for name, targets in GRAPH.items():
        layer = _layer(name)
        if layer not in ("cli", "serve", "worker"):
            continue
        for t in targets:
            allowed = t in ("bridge.api", "bridge.version") or _layer(t) == layer or \
                (layer == "cli" and _layer(t) in ("serve", "worker"))
            assert allowed, f"{name} imports {t}: the {layer} layer goes through bridge.api"


def test_click_only_in_the_cli_layer():
    for name, path in MODULES.items():
        if "click" in _third_party(path):
            assert _layer(name) == "cli", f"{name} imports click"


def test_modules_stay_small():
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert all(n <= MAX_LINES for n in sizes.values()), {k: v for k, v in sizes.items() if v > MAX_LINES}
    assert "bridge.cli_support" not in MODULES and "bridge.backends" not in MODULES


def test_no_public_name_is_shadowed_by_a_submodule():
    # importing bridge.x sets the attribute x on the package: a module named like an API function hides it
    from bridge import api

    submodules = {name.split(".")[1] for name in MODULES if name.count(".") >= 1}
    assert not submodules & set(api.__all__), submodules & set(api.__all__)


def test_every_module_imports_on_its_own():
    # a fresh interpreter per module: an import that only works after some other import is a hidden cycle
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def load(name: str):
        return name, subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True,
                                    cwd=PACKAGE.parent, timeout=120)

    with ThreadPoolExecutor(4) as pool:
        failed = {name: proc.stderr.strip().splitlines()[-1] for name, proc in pool.map(load, sorted(MODULES))
                  if proc.returncode != 0 and name != "bridge.__main__"}
    assert not failed, failed
