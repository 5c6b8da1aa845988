"""The import structure of medgen: no module imports itself back, and the layers point one way.

Every module under medgen/ is parsed with ``ast`` (nothing is imported), imports inside
functions included: a lazy import hides a dependency, it does not remove it. References
given as strings (``"medgen.module:attribute"``, resolved on first use by
``medgen.family.resolve``) count as imports too, and must name a module and an attribute
that exist.

Layers: ``tasks.<task>`` may import ``models``, ``data``, ``report``, ``nn`` and the core
modules, never another task; ``models`` never imports ``tasks`` or ``report``; ``data``
never imports ``models`` or ``tasks``; ``report`` and ``evaluate`` (what every task's
figures and evaluations share) never import ``tasks``; ``nn`` never imports ``models``.
"""

from __future__ import annotations

import ast
import re
from itertools import pairwise
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "medgen"


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py under medgen/ (packages by their name)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _known(name: str) -> str | None:
    """The deepest medgen module a dotted name lies in (``medgen.a.b.func`` -> ``medgen.a.b``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The medgen modules one import statement of ``module`` loads (relative ones resolved)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            if MODULES[module].name != "__init__.py":
                base = base[:-1]  # a module's package; a package is its own
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from pkg import name`: name is a submodule or an attribute of pkg
        names = [source] + [f"{source}.{alias.name}" for alias in node.names]
    found = {_known(name) for name in names}
    return {target for target in found if target is not None and target != module}


REFERENCE = re.compile(r"medgen(\.\w+)+:\w+")


def _references() -> dict[str, list[tuple[str, int]]]:
    """module -> the ``"medgen.x.y:attr"`` string constants in it, with their lines."""
    found: dict[str, list[tuple[str, int]]] = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and REFERENCE.fullmatch(node.value)):
                found.setdefault(module, []).append((node.value, node.lineno))
    return found


REFERENCES = _references()


def _graph() -> dict[str, dict[str, int]]:
    """module -> {imported or string-referenced medgen module: line of its first mention}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _targets(module, node):
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
        for reference, line in REFERENCES.get(module, []):
            target = reference.partition(":")[0]
            if target in MODULES and target != module:
                edges[target] = min(edges.get(target, line), line)
        graph[module] = edges
    return graph


GRAPH = _graph()


def _strongly_connected(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _is_package_and_its_submodules(component: list[str]) -> bool:
    # a package's __init__ importing its own submodules is not a design cycle
    top = min(component, key=len)
    return all(m == top or m.startswith(top + ".") for m in component)


def _cycle_path(component: list[str]) -> str:
    """One concrete cycle through a strongly connected component, with import lines."""
    members = set(component)
    start = component[0]
    path, seen = [start], {start}
    while True:
        here = path[-1]
        step = sorted(t for t in GRAPH[here] if t in members)
        nxt = next((t for t in step if t == start), None) or next(
            (t for t in step if t not in seen), step[0])
        path.append(nxt)
        if nxt in seen:
            path = path[path.index(nxt):]
            break
        seen.add(nxt)
    return " -> ".join(
        f"{a} (line {GRAPH[a][b]})" for a, b in pairwise(path)) + f" -> {path[-1]}"


def test_the_parser_sees_the_package():
    assert len(MODULES) > 40 and "medgen.tasks.anomaly.evaluate" in MODULES
    # evaluate may import report: an edge the parser must find
    assert "medgen.tasks.anomaly.figures" in GRAPH["medgen.tasks.anomaly.evaluate"]
    # a relative or function-level import would count the same way
    assert all(t.startswith("medgen") for edges in GRAPH.values() for t in edges)


def test_no_module_import_cycles():
    cycles = [c for c in _strongly_connected(GRAPH)
              if len(c) > 1 and not _is_package_and_its_submodules(c)]
    assert not cycles, "import cycles:\n" + "\n".join(_cycle_path(c) for c in cycles)


def _offenders(lower: str, upper: str) -> list[str]:
    def inside(module: str, layer: str) -> bool:
        return module == layer or module.startswith(layer + ".")

    return [f"{module} imports {target} (line {line})"
            for module, edges in sorted(GRAPH.items()) if inside(module, lower)
            for target, line in sorted(edges.items()) if inside(target, upper)]



@pytest.mark.parametrize("lower, upper", [
    pytest.param("medgen.report", "medgen.tasks", id="report-never-imports-tasks"),
    pytest.param("medgen.data", "medgen.models", id="data-never-imports-models"),
    pytest.param("medgen.data", "medgen.tasks", id="data-never-imports-tasks"),
    pytest.param("medgen.models", "medgen.tasks", id="models-never-import-tasks"),
    pytest.param("medgen.models", "medgen.report", id="models-never-import-report"),
    pytest.param("medgen.nn", "medgen.models", id="blocks-never-import-families"),
    pytest.param("medgen.planning", "medgen.tasks", id="planning-never-imports-tasks"),
    pytest.param("medgen.evaluate", "medgen.tasks", id="shared-evaluation-never-imports-tasks"),
])
def test_layers_point_one_way(lower, upper):
    offenders = _offenders(lower, upper)
    assert not offenders, f"{lower} must not import {upper}:\n" + "\n".join(offenders)


TASK_FOLDERS = sorted({m.split(".")[2] for m in MODULES if m.startswith("medgen.tasks.")})


def test_every_registered_task_has_its_folder():
    from medgen.registry import TASKS

    assert sorted(TASKS) == TASK_FOLDERS
    assert all(TASKS[name] == f"medgen.tasks.{name}" for name in TASKS)


@pytest.mark.parametrize("task", TASK_FOLDERS)
def test_tasks_never_import_each_other(task):
    """What two tasks share lives below them (data, report, models, the core modules)."""
    offenders = [offender for other in TASK_FOLDERS if other != task
                 for offender in _offenders(f"medgen.tasks.{task}", f"medgen.tasks.{other}")]
    assert not offenders, f"medgen.tasks.{task} imports another task:\n" + "\n".join(offenders)
