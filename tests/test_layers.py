"""Layers import downward only, and no module imports itself round a loop (issue 27).

An AST check over src/animated_stickers: every `import` and `from ... import` counts, at module level or
inside a function (a lazy import is still a dependency), under `if TYPE_CHECKING:` too. The layers, from
the ground up (README, Layout); a module may import modules of its own layer and of lower layers:

    errors                                   imports nothing of the project: anything may raise UserError
    rgba atomic cpu io_limits keying         leaf helpers
    config flow                              conventions (config.cond_index, ...), optical flow
    models diffusion motion                  networks, solvers, the motion vocabulary and transforms
    checks prompts_file                      prompt and output-path checks, prompts.json
    data                                     sources, shards, loader, the unseen-style guard
    training export
    sampling
    serve
    eval
    hitl
    cli                                      the `stickers` command

Packages of one layer may import each other; `test_no_import_loops` keeps that from becoming a loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import animated_stickers

LAYERS: list[set[str]] = [  # top-level modules and packages of animated_stickers, from the ground up
    {"errors"},
    {"rgba", "atomic", "cpu", "io_limits", "keying"},
    {"config", "flow"},
    {"models", "diffusion", "motion"},
    {"checks", "prompts_file"},
    {"data"},
    {"training", "export"},
    {"sampling"},
    {"serve"},
    {"eval"},
    {"hitl"},
    {"cli"},
]
# (importer, imported) -> why an upward import is allowed. Empty: keep it that way or write the reason.
ALLOWED: dict[tuple[str, str], str] = {}

SRC = Path(animated_stickers.__file__).resolve().parent

Edge = tuple[str, str, int]  # (importer module, imported module, line)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_edges(root: Path) -> list[Edge]:
    """Every import of package `root` (a folder with __init__.py) by one of its own modules."""
    pkg = root.name
    files = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    edges = []
    for name, path in files.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(here[:len(here) - node.level + 1] + [node.module or ""]) if node.level \
                    else node.module or ""
                base = base.rstrip(".")
                # `from . import x` / `from .pkg import sub`: the submodule when there is one, else the module
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in files]
                targets = subs if len(subs) == len(node.names) else [base, *subs]
            else:
                continue
            edges += [(name, t, node.lineno) for t in targets if t == pkg or t.startswith(pkg + ".")]
    return [e for e in edges if e[0] != e[1]]


def layer_of(module: str, layers: list[set[str]]) -> int | None:
    """Index of the layer of `pkg.top.rest` (by `top`); None for the package itself or an unplaced name."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    return next((i for i, names in enumerate(layers) if parts[1] in names), None)


def upward_imports(edges: Iterable[Edge], layers: list[set[str]],
                   allowed: dict[tuple[str, str], str] | None = None) -> list[str]:
    """'a.b:12 imports a.c (layer 5 > 3)' for each import of a higher layer than the importer's."""
    allowed = allowed or {}
    out = []
    for src, dst, line in edges:
        lo, hi = layer_of(src, layers), layer_of(dst, layers)
        if lo is not None and hi is not None and hi > lo and (src, dst) not in allowed:
            out.append(f"{src}:{line} imports {dst} (layer {hi} > {lo})")
    return out


def import_loops(edges: Iterable[Edge]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for src, dst, _ in edges:
        graph.setdefault(src, set()).add(dst)
        graph.setdefault(dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                loops.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return loops


# ---------------------------------------------------------------------------------------- the project


def test_every_module_has_a_layer():
    tops = {p.stem if p.is_file() else p.name for p in SRC.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    placed = set().union(*LAYERS)
    assert tops - placed == set(), "place these in LAYERS (and in README's layout)"
    assert placed - tops == set()


def test_no_module_imports_a_higher_layer():
    edges = import_edges(SRC)
    assert len(edges) > 100  # the check sees the project's imports
    assert upward_imports(edges, LAYERS, ALLOWED) == []


def test_no_import_loops():
    assert import_loops(import_edges(SRC)) == []


def test_errors_imports_nothing_of_the_project():
    assert [e for e in import_edges(SRC) if e[0] == "animated_stickers.errors"] == []


# ---------------------------------------------------------------------------------------- the check itself


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_check_catches_an_upward_import_even_a_lazy_one(tmp_path):
    pkg = _package(tmp_path / "pkg", {
        "__init__.py": "",
        "low.py": "import os\n\n\ndef f():\n    from .high import api  # lazy, still upward\n",
        "mid.py": "from . import low\nfrom .low import f\n",
        "high/__init__.py": "",
        "high/api.py": "from ..mid import low\nfrom pkg import mid\nimport pkg.low\n",
    })
    layers = [{"low"}, {"mid"}, {"high"}]
    edges = import_edges(pkg)
    assert {(a, b) for a, b, _ in edges} == {
        ("pkg.low", "pkg.high.api"), ("pkg.mid", "pkg.low"), ("pkg.high.api", "pkg.mid"),
        ("pkg.high.api", "pkg.low")}
    assert upward_imports(edges, layers) == ["pkg.low:5 imports pkg.high.api (layer 2 > 0)"]
    assert upward_imports(edges, layers, {("pkg.low", "pkg.high.api"): "a written reason"}) == []
    assert import_loops(edges) == [["pkg.high.api", "pkg.low", "pkg.mid"]]


def test_the_check_catches_an_upward_edge_injected_into_the_project():
    edges = import_edges(SRC)
    injected = ("animated_stickers.config", "animated_stickers.data.clips", 1)  # what issue 27 removed
    assert upward_imports([*edges, injected], LAYERS) == [
        "animated_stickers.config:1 imports animated_stickers.data.clips (layer 5 > 2)"]
    loop = ("animated_stickers.flow", "animated_stickers.models.decoder", 1)  # models.decoder imports flow
    assert ["animated_stickers.flow", "animated_stickers.models.decoder"] in import_loops([*edges, loop])
