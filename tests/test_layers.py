"""The layers point one way, read from every module's own imports (`TYPE_CHECKING` ones included).

- the kernel (`controller.core`) imports nothing else of the project;
- the engine (`controller.engine`) imports only the kernel;
- a part (devices, modes, uploader, the market clients, forecasts, the planner) imports the kernel,
  the engine and other parts' modules, never the application (daemon, wiring, runtime, control
  loop, site model, CLI commands, ops, backtest);
- the simulator never reaches the daemon's application modules either;
- no import cycle anywhere in the project.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("controller", "modes", "devices", "uploader", "simulator")

KERNEL = ("controller.core",)
ENGINE = ("controller.engine",)
PARTS = ("devices", "modes", "uploader", "controller.market", "controller.forecast", "controller.planner")
APPLICATION = ("controller.daemon", "controller.wiring", "controller.runtime", "controller.control_loop",
               "controller.config", "controller.commands", "controller.cli", "controller.ops",
               "controller.backtest", "controller.legacy", "controller.__main__")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = all_modules()


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (`a.b.C` -> `a.b`), or None outside the project."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """Every project module `module` imports, wherever the import stands (functions, TYPE_CHECKING)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{a.name}" for a in node.names] or [base]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def within(module: str, layer: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in layer)


def violations(layer: tuple[str, ...], allowed: tuple[str, ...]) -> Iterator[str]:
    for module, targets in sorted(GRAPH.items()):
        if within(module, layer):
            for t in sorted(targets):
                if not within(t, allowed):
                    yield f"{module} imports {t}"


def test_the_kernel_imports_nothing_else_of_the_project() -> None:
    assert list(violations(KERNEL, KERNEL)) == []


def test_the_engine_imports_only_the_kernel() -> None:
    assert list(violations(ENGINE, (*KERNEL, *ENGINE))) == []


def test_no_part_imports_the_application() -> None:
    assert list(violations(PARTS, (*KERNEL, *ENGINE, *PARTS))) == []


def test_the_simulator_stays_out_of_the_application() -> None:
    # It reads the site model to know what to serve; it never runs or wires daemon components.
    allowed = (*KERNEL, *ENGINE, *PARTS, "simulator", "controller.config")
    assert list(violations(("simulator",), allowed)) == []


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(GRAPH):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(GRAPH[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(GRAPH[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycle_in_the_project() -> None:
    assert cycles() == []


def test_the_reader_sees_type_checking_and_package_imports() -> None:
    # The rules above are only as good as the import reader.
    assert "controller.runtime" in GRAPH["controller.ops.provider"]  # under TYPE_CHECKING only
    assert "controller.wiring" in GRAPH["controller.daemon"]  # `from controller.wiring import ...`
    assert "simulator.cloud" in GRAPH["simulator.run"]  # `from simulator import cloud`


def test_a_cycle_is_found_when_there_is_one() -> None:
    saved = dict(GRAPH)
    try:
        GRAPH["controller.core.clock"] = {*GRAPH["controller.core.clock"], "controller.core.logs"}
        GRAPH["controller.core.logs"] = {*GRAPH["controller.core.logs"], "controller.core.clock"}
        assert ["controller.core.clock", "controller.core.logs"] in cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
