"""The package's shape, read from its source: layers, import direction, no cycles, short
modules, no private names across modules, and grids that import no plotting library.

The layers, ``core <- experiments <- {rl, perf} <- chapters <- cli``: ``core`` imports only
``core``; ``experiments`` only ``core`` and itself; ``rl`` and ``perf`` the two below and
themselves, never each other and never ``chapters`` (they compute; they draw nothing);
``chapters`` everything below it, because chapter 8 shows the Catch agents of ``rl`` and chapter
9 the benchmarks of ``perf``; ``cli`` anything. (``shared/DESIGN.md`` drew ``chapters``, ``rl`` and
``perf`` side by side; a chapter that presents RL or performance has to read them, so the
chapters sit one layer up and the rule that rl/perf never plot keeps the direction one-way.)
A chapter module (``chapters/chNN_*.py``) is imported by no other module of ``chapters/``.

Every import counts, at the top of a module or inside a function: a function-level import is
still a dependency, only a later one.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "fwbook"
LAYERS = ("core", "experiments", "chapters", "rl", "perf", "cli")
MAY_IMPORT = {  # layer -> the layers its modules may import
    "core": {"core"},
    "experiments": {"core", "experiments"},
    "chapters": {"core", "experiments", "rl", "perf", "chapters"},
    "rl": {"core", "experiments", "rl"},
    "perf": {"core", "experiments", "perf"},
    "cli": set(LAYERS),
}
ENTRY_POINTS = {"fwbook.__main__": "cli"}  # outside the layer folders, in the cli layer
MAX_LINES = 500
CHAPTER_MODULE = re.compile(r"^fwbook\.chapters\.ch\d\d_\w+$")
# underscore names that are public API of the standard library's namedtuple
NAMEDTUPLE_API = {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}
PLOTTING = ("matplotlib", "seaborn")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass
class Import:
    source: str  # the importing module
    target: str  # the fwbook module imported
    line: int
    names: tuple[str, ...] = ()  # names taken from it by ``from target import ...``


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    imports: list[Import] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # local name -> fwbook module

    @property
    def layer(self) -> str | None:
        if self.name in ENTRY_POINTS:
            return ENTRY_POINTS[self.name]
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _read_package() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        modules[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    for module in modules.values():
        _collect_imports(module, modules)
    return modules


def _resolve_relative(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.package.split(".")
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _collect_imports(module: Module, modules: dict[str, Module]) -> None:
    """Every import of a fwbook module in ``module``, wherever it stands (``ast.walk``), and
    ``importlib.import_module("fwbook...")`` / ``__import__("fwbook...")`` with a literal name."""
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "fwbook":
                    module.imports.append(Import(module.name, alias.name, node.lineno))
                    if alias.asname:
                        module.aliases[alias.asname] = alias.name
                    else:
                        module.aliases["fwbook"] = "fwbook"
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(module, node)
            if base.split(".")[0] != "fwbook":
                continue
            from_base = []
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # ``from fwbook.cli import book``: a module
                    module.imports.append(Import(module.name, submodule, node.lineno))
                    module.aliases[alias.asname or alias.name] = submodule
                else:
                    from_base.append(alias.name)
            if from_base or not node.names:
                module.imports.append(Import(module.name, base, node.lineno, tuple(from_base)))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and node.args[0].value.split(".")[0] == "fwbook"
              and _call_name(node.func) in ("import_module", "importlib.import_module",
                                            "__import__")):
            module.imports.append(Import(module.name, node.args[0].value, node.lineno))


def _call_name(func: ast.expr) -> str:
    return ".".join(_dotted(func) or [])


def _dotted(node: ast.expr) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; None for anything that is not a plain dotted name."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else inner + [node.attr]
    return None


MODULES = _read_package()


def _where(module: Module, line: int) -> str:
    return f"{module.path.relative_to(PACKAGE.parent)}:{line}"


def _report(title: str, problems: list[str]) -> str:
    return f"{title} ({len(problems)}):\n  " + "\n  ".join(problems)


def test_the_package_is_found_and_parsed():
    assert {"fwbook.core.models", "fwbook.core.train", "fwbook.cli.main"} <= set(MODULES)
    assert any(i.target == "fwbook.core.models" for m in MODULES.values() for i in m.imports)


def test_every_fwbook_import_names_a_module_that_exists():
    problems = [f"{_where(m, i.line)} imports {i.target}, which does not exist"
                for m in MODULES.values() for i in m.imports if i.target not in MODULES]
    assert not problems, _report("imports of missing modules", problems)


def test_every_module_lives_in_a_layer():
    loose = [m.name for m in MODULES.values()
             if m.layer is None and m.name not in ("fwbook",)]
    assert not loose, _report(f"modules outside {', '.join(LAYERS)}", loose)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES.values():
        for imported in module.imports:
            if imported.target in MODULES and imported.target != module.name:
                graph[module.name].add(imported.target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(set(graph).union(*graph.values())):
        if node not in index:
            visit(node)
    return components


def test_cycle_detection_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    graph = _graph()
    problems = []
    for component in _cycles(graph):
        members = set(component)
        edges = [f"{_where(m, i.line)} imports {i.target}"
                 for m in (MODULES[name] for name in component)
                 for i in m.imports if i.target in members and i.target != m.name]
        problems.append(" <-> ".join(component) + ": " + "; ".join(edges))
    assert not problems, _report("import cycles (function-level imports included)", problems)


def test_imports_follow_the_layers():
    problems = []
    for module in MODULES.values():
        if module.layer is None:
            continue
        for imported in module.imports:
            target = MODULES.get(imported.target)
            if target is None or target.layer is None:
                continue  # a missing module, or the fwbook package itself
            if target.layer not in MAY_IMPORT[module.layer]:
                problems.append(f"{_where(module, imported.line)}: {module.layer} imports "
                                f"{imported.target} ({target.layer})")
    assert not problems, _report(
        "imports against core <- experiments <- {rl, perf} <- chapters <- cli", problems)


def _chapter_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each path by which a chapter module reaches another: directly, or through the shared
    modules of chapters/ (a helper that imports a chapter module carries that chapter into
    every chapter that uses the helper)."""
    found = []
    for start in sorted(name for name in graph if CHAPTER_MODULE.match(name)):
        paths, queue = {start: [start]}, [start]
        while queue:
            current = queue.pop(0)
            for target in sorted(graph.get(current, ())):
                if target in paths or not target.startswith("fwbook.chapters."):
                    continue
                paths[target] = paths[current] + [target]
                if CHAPTER_MODULE.match(target):
                    found.append(" -> ".join(paths[target]))
                else:
                    queue.append(target)
    return found


def test_chapter_import_detection():
    graph = {"fwbook.chapters.ch01_a": {"fwbook.chapters.plots", "fwbook.core.models"},
             "fwbook.chapters.plots": {"fwbook.chapters.ch02_b"},
             "fwbook.chapters.ch02_b": {"fwbook.chapters.explorer"},
             "fwbook.chapters.explorer": {"fwbook.chapters.ch02_b"}}
    assert _chapter_imports(graph) == [
        "fwbook.chapters.ch01_a -> fwbook.chapters.plots -> fwbook.chapters.ch02_b"]


def test_no_chapter_module_imports_another():
    problems = _chapter_imports(_graph())
    assert not problems, _report("chapter modules importing another chapter module", problems)


def test_no_module_over_500_lines():
    files = sorted(list(PACKAGE.rglob("*.py")) + list(PACKAGE.rglob("*.js")))
    assert files
    long = [f"{path.relative_to(PACKAGE.parent)}: {count} lines" for path in files
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, _report(f"modules over {MAX_LINES} lines", long)


def _defined_names(tree: ast.Module) -> set[str]:
    """Every name a module defines or assigns anywhere: functions, classes, variables,
    attributes it sets (``self._cache = ...``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


DEFINED = {name: _defined_names(module.tree) for name, module in MODULES.items()}


def _private_uses(module: Module) -> list[str]:
    problems = []
    for imported in module.imports:
        if imported.target == module.name:
            continue
        for name in imported.names:
            if _is_private(name):
                problems.append(f"{_where(module, imported.line)} imports {name} from "
                                f"{imported.target}")
        if _is_private(imported.target.rpartition(".")[2]):
            problems.append(f"{_where(module, imported.line)} imports the private module "
                            f"{imported.target}")
    own = DEFINED[module.name]
    elsewhere = {name: owner for owner, names in DEFINED.items() if owner != module.name
                 for name in names if _is_private(name)}
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Attribute) or not _is_private(node.attr):
            continue
        dotted = _dotted(node.value)
        if dotted and dotted[0] in module.aliases:  # fwbook_module._name
            target = ".".join([module.aliases[dotted[0]], *dotted[1:]])
            if target in MODULES and target != module.name:
                problems.append(f"{_where(module, node.lineno)} uses {target}.{node.attr}")
            continue
        if dotted in (["self"], ["cls"]) or node.attr in NAMEDTUPLE_API or node.attr in own:
            continue
        if node.attr in elsewhere:  # another module's private attribute, on an object
            text = ast.unparse(node)
            problems.append(f"{_where(module, node.lineno)} uses {text} (private to "
                            f"{elsewhere[node.attr]})")
    return problems


def test_no_private_name_used_across_modules():
    problems = [problem for module in MODULES.values() for problem in _private_uses(module)]
    assert not problems, _report("private names used outside their module", problems)


def _grid_builders() -> dict[str, str]:
    """function name -> the experiments module that defines it, found by reading the source."""
    wanted = ("table1_configs", "ablation_configs", "fair_plan")
    found: dict[str, list[str]] = defaultdict(list)
    for module in MODULES.values():
        if module.layer != "experiments":
            continue
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef) and node.name in wanted:
                found[node.name].append(module.name)
    assert all(len(found[name]) == 1 for name in wanted), dict(found)
    return {name: found[name][0] for name in wanted}


def test_building_every_experiment_grid_imports_no_plotting_library(tmp_path):
    builders = _grid_builders()
    script = textwrap.dedent(f"""
        import importlib, json, sys
        builders = {builders!r}
        grid = {{name: getattr(importlib.import_module(module), name)
                 for name, module in builders.items()}}
        sizes = {{}}
        for profile in ("smoke", "quick", "paper"):
            sizes["table1", profile] = len(grid["table1_configs"](profile, (0, 1, 2)))
            sizes["ablations", profile] = len(grid["ablation_configs"](profile, (0, 1, 2)))
            plan, waiting = grid["fair_plan"]({str(tmp_path)!r}, profile, seeds=(0, 1, 2))
            sizes["fair", profile] = len(plan)
        plotting = sorted(name for name in sys.modules
                          if name.split(".")[0] in {PLOTTING!r})
        print(json.dumps({{"plotting": plotting,
                          "sizes": {{" ".join(key): size for key, size in sizes.items()}}}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(size > 0 for size in report["sizes"].values()), report["sizes"]
    assert not report["plotting"], (
        f"building the grids imported {', '.join(report['plotting'][:8])}")


@pytest.mark.parametrize("source, expected", [
    ("from fwbook.core.models import _fast_term", "imports _fast_term from fwbook.core.models"),
    ("import fwbook.core.models as models\nmodels._fast_term(1)", "uses fwbook.core.models._fast_term"),
    ("from fwbook.core import models\nmodels._fast_term", "uses fwbook.core.models._fast_term"),
    ("import fwbook.core.models\nfwbook.core.models._x", "uses fwbook.core.models._x"),
])
def test_private_name_check_catches(source, expected):
    module = Module("fwbook.cli.probe", PACKAGE / "cli" / "probe.py", ast.parse(source))
    _collect_imports(module, MODULES)
    DEFINED[module.name] = _defined_names(module.tree)
    try:
        problems = _private_uses(module)
    finally:
        del DEFINED[module.name]
    assert any(expected in problem for problem in problems), problems
