"""The import contract of src/shipyard (issue 11), checked with `ast` so that imports inside
functions count too. Each test is parametrized by owner (a tool, or "shared") and lists every
violation it finds, with file:line, so a failure says what to fix and who fixes it.

1. Layers within a tool point one way: model < plan < targets/engines < runner < interfaces
   (cli, demo, http, aws handlers, web). LAYERS below names each tool's modules; a module that is
   not in its tool's table is a violation until it is given a layer. A package's __init__ sits at
   the highest layer it imports. Import cycles inside a tool are violations too.
2. Tools never import each other, except `shipyard.notify` (shared) and jarvis's public API
   (`from shipyard.jarvis import send`); shared modules never import a tool (the umbrella
   shipyard/cli.py mounts each tool's cli).
3. No `from x import _private` across modules.
4. An import inside a function has a comment on its line or the line above saying why (an optional
   heavy dependency, or start-up cost).
5. A file over 350 lines says why in its first 15 lines ("over 350 lines because ...").
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
TOOLS = ("propagator", "jarvis", "lake", "pulse", "photon", "custodian", "ami", "site")
MODEL, PLAN, TARGETS, RUNNER, INTERFACE = range(5)
NAMES = ["model", "plan", "targets/engines", "runner", "interface"]
# Per tool: layer -> modules (dotted, relative to the tool; "x.*" is every module under x).
LAYERS: dict[str, dict[int, list[str]]] = {
    "propagator": {MODEL: ["layout", "specs", "events", "datafile", "dialects", "dialects.*", "plan.model", "ledger"],
                   PLAN: ["plan", "plan.*", "duckdb_reader", "screen", "schedule"],
                   TARGETS: ["engines", "engines.*", "sources", "spool", "redshift_auth"],
                   RUNNER: ["runner", "planning", "outcomes", "dispatch", "sqs", "offline", "history", "infer"],
                   INTERFACE: ["cli", "demo", "aws", "display"]},
    "jarvis": {MODEL: ["payload"], TARGETS: ["slack", "attachments"], RUNNER: ["service"],
               INTERFACE: ["notifier", "aws", "http", "cli"]},
    "lake": {MODEL: ["config", "schema", "sql", "manifest", "errors"], PLAN: ["plan", "rawfiles"],
             TARGETS: ["engines", "engines.*", "read", "staging", "publish", "typecheck", "strict", "spark", "athena",
                       "glue", "notices"],
             RUNNER: ["ingest", "ops", "forget"], INTERFACE: ["cli", "demo", "spark_job"]},
    "pulse": {MODEL: ["model", "schedule", "patterns", "yamlfile", "options", "clock", "config", "fields", "tlsconf",
                      "kinds", "badges"],
              PLAN: ["alerting", "scheduler", "push"], TARGETS: ["checks", "netchecks", "history", "tables", "sync"],
              RUNNER: ["service", "recorder", "reloader", "status"], INTERFACE: ["cli", "web", "demo"]},
    "photon": {MODEL: ["model", "aws_model", "variables", "state"], PLAN: ["plan", "rollout"],
               TARGETS: ["targets", "targets.*", "aws", "aws.*", "secrets"], RUNNER: ["runner"],
               INTERFACE: ["cli", "demo", "demo_app", "clientloop"]},
    "custodian": {MODEL: ["model"], PLAN: ["decide"], TARGETS: ["bundle", "c7n", "hub", "ledger"],
                  RUNNER: ["runner", "review"], INTERFACE: ["cli", "aws"]},
    "ami": {MODEL: ["model"], PLAN: ["plan"], TARGETS: ["aws", "build"], RUNNER: ["runner"],
            INTERFACE: ["cli", "demo", "standin", "report"]},
    "site": {MODEL: ["model"], PLAN: ["plan"], TARGETS: ["source", "cdn", "targets", "targets.*", "verify"],
             RUNNER: ["runner"], INTERFACE: ["cli", "demo", "serve"]},
}
MAX_LINES = 350
LONG_REASON = re.compile(r"(?i)(over|more than|above)\s*~?\s*350\s*lines|\bthis (file|module) is long\b|"
                         r"\blong because\b")


class Module:
    def __init__(self, path: Path) -> None:
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts[:-1]) if rel.name == "__init__" else list(rel.parts)
        self.path, self.name, self.is_package = path, ".".join(parts), rel.name == "__init__"
        self.text = path.read_text(encoding="utf-8")
        self.lines = self.text.splitlines()
        self.tree = ast.parse(self.text, str(path))
        self.tool = parts[1] if len(parts) > 1 and parts[1] in TOOLS else None
        self.local = ".".join(parts[2:]) if self.tool else ""  # the name inside the tool

    def where(self, line: int) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{line}"

    def imports(self) -> list[tuple[str, list[str], int, bool]]:
        """(module imported, names taken from it, line, inside a function) for every import."""
        if hasattr(self, "_imports"):
            return self._imports
        out: list[tuple[str, list[str], int, bool]] = []
        self._imports = out

        def visit(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                if isinstance(child, ast.Import):
                    out.extend((a.name, [], child.lineno, in_function) for a in child.names)
                elif isinstance(child, ast.ImportFrom):
                    base = child.module or ""
                    if child.level:  # relative: resolve against this module's package
                        pkg = self.name.split(".") if self.is_package else self.name.split(".")[:-1]
                        base = ".".join(pkg[: len(pkg) - child.level + 1] + ([base] if base else []))
                    out.append((base, [a.name for a in child.names], child.lineno, in_function))
                visit(child, inside)

        visit(self.tree, False)
        return out


MODULES = {m.name: m for m in (Module(p) for p in sorted(SRC.joinpath("shipyard").rglob("*.py")))}
OWNERS = sorted({m.tool or "shared" for m in MODULES.values()})


def targets(name: str, names: list[str]) -> list[str]:
    """The shipyard modules an import loads: `from pkg import sub` is the submodule sub."""
    subs = [f"{name}.{n}" for n in names if f"{name}.{n}" in MODULES]
    return subs if subs and len(subs) == len(names) else [name] + subs if name in MODULES else subs


def declared_layer(tool: str, local: str) -> int | None:
    best: tuple[int, int] | None = None  # (specificity, layer)
    for layer, entries in LAYERS.get(tool, {}).items():
        for e in entries:
            if e == local:
                return layer
            if e.endswith(".*") and local.startswith(e[:-1]) and (best is None or len(e) > best[0]):
                best = (len(e), layer)
    return best[1] if best else None


def layer(mod: Module, seen: frozenset[str] = frozenset()) -> int | None:
    if mod.is_package and declared_layer(mod.tool or "", mod.local) is None:
        # A package's __init__ (a tool's public API) sits at the highest layer it imports.
        inner = [MODULES[t] for n, ns, _, _ in mod.imports() for t in targets(n, ns)
                 if t in MODULES and MODULES[t].tool == mod.tool and t != mod.name and t not in seen]
        return max([lay for m in inner if (lay := layer(m, seen | {mod.name})) is not None], default=MODEL)
    return declared_layer(mod.tool or "", mod.local)


def owned(owner: str) -> list[Module]:
    return [m for m in MODULES.values() if (m.tool or "shared") == owner]


def report(problems: list[str], what: str) -> None:
    assert not problems, f"{len(problems)} {what}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("owner", OWNERS)
def test_layers_point_one_way(owner):
    problems: list[str] = []
    edges: dict[str, set[str]] = defaultdict(set)
    for mod in owned(owner):
        mine = layer(mod) if mod.tool else None
        if mod.tool and mine is None:
            problems.append(f"{mod.where(1)}: {mod.name} has no layer: add it to LAYERS[{mod.tool!r}] "
                            "in tests/test_architecture.py")
        for name, names, line, _ in mod.imports():
            for t in targets(name, names):
                other = MODULES.get(t)
                if other is None or other.tool != mod.tool or t == mod.name:
                    continue
                edges[mod.name].add(t)
                theirs = layer(other)
                if mine is not None and theirs is not None and theirs > mine:
                    problems.append(f"{mod.where(line)}: {mod.name} ({NAMES[mine]}) imports {t} ({NAMES[theirs]})")
    for cycle in cycles(edges):
        problems.append("import cycle: " + " -> ".join(cycle + [cycle[0]]))
    report(problems, f"layer violations in {owner}")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative enough)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            strong(v)
    return found


@pytest.mark.parametrize("owner", OWNERS)
def test_tools_do_not_import_each_other(owner):
    problems = []
    for mod in owned(owner):
        for name, names, line, _ in mod.imports():
            for t in targets(name, names):
                other = MODULES.get(t)
                if other is None or other.tool is None or other.tool == mod.tool:
                    continue
                if t == "shipyard.jarvis" or (mod.name == "shipyard.cli" and other.local == "cli"):
                    continue  # jarvis's public API; the umbrella CLI mounting a tool
                problems.append(f"{mod.where(line)}: {mod.name} imports {t} (another tool); go through "
                                "shipyard.notify or `from shipyard.jarvis import ...`")
    report(problems, f"cross-tool imports in {owner}")


@pytest.mark.parametrize("owner", OWNERS)
def test_no_private_names_across_modules(owner):
    problems = []
    for mod in owned(owner):
        for name, names, line, _ in mod.imports():
            for n in names:
                if n.startswith("_") and not n.startswith("__") and name != mod.name:
                    problems.append(f"{mod.where(line)}: {mod.name} imports the private name {n} from {name}")
    report(problems, f"private imports in {owner}")


@pytest.mark.parametrize("owner", OWNERS)
def test_function_level_imports_say_why(owner):
    problems = []
    for mod in owned(owner):
        for name, _, line, in_function in mod.imports():
            here, above = mod.lines[line - 1], (mod.lines[line - 2].strip() if line > 1 else "")
            if in_function and "#" not in here and not above.startswith("#"):
                problems.append(f"{mod.where(line)}: `{here.strip()}` inside a function without a comment "
                                "saying why (an optional heavy dependency or start-up cost); else import "
                                "it at the top")
    report(problems, f"unexplained function-level imports in {owner}")


@pytest.mark.parametrize("owner", OWNERS)
def test_long_files_say_why(owner):
    problems = []
    for mod in owned(owner):
        n = len(mod.lines)
        if n > MAX_LINES and not LONG_REASON.search("\n".join(mod.lines[:15])):
            problems.append(f"{mod.where(1)}: {n} lines; split it, or say in its first 15 lines "
                            f"\"over {MAX_LINES} lines because ...\"")
    report(problems, f"long files in {owner}")


def test_the_checker_sees_what_it_must():
    """The checker itself: function-level imports are seen, relative imports resolved, cycles found."""
    m = MODULES["shipyard.jarvis.cli"]
    assert any(in_fn for _, _, _, in_fn in m.imports())
    assert targets("shipyard.jarvis", ["service"]) == ["shipyard.jarvis.service"]
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert declared_layer("propagator", "engines.duckdb") == TARGETS
    assert declared_layer("propagator", "plan.model") == MODEL


def layers_table() -> list[str]:
    """docs/architecture.md's table of layers, made from LAYERS (`dialects`+`dialects.*` -> `dialects/*`)."""
    def cell(mods: list[str]) -> str:
        names = [m[:-2] + "/*" if m.endswith(".*") else m for m in mods]
        return ", ".join(n for n in names if n + "/*" not in names)
    return [f"| {tool} | " + " | ".join(cell(layers.get(i, [])) for i in range(5)) + " |"
            for tool, layers in LAYERS.items()]


def test_the_docs_table_of_layers_is_the_contract():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "architecture.md").read_text()
    missing = [row for row in layers_table() if row not in doc]
    assert not missing, ("docs/architecture.md's table of layers differs from LAYERS; "
                         "these rows are the contract's:\n" + "\n".join(missing))
