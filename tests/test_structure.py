"""The shape of the code base: apps are short declarations over the model
families, and the library prints nothing (the command line does)."""

import ast
from pathlib import Path

import pytest

from nlpseq.registry import APPS
from nlpseq.tasks.base import Task

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = [p for p in (ROOT / "nlpseq").rglob("*.py")
           if "cli" not in p.relative_to(ROOT / "nlpseq").parts]


@pytest.mark.parametrize("name", APPS.names())
def test_every_app_is_a_short_declaration_over_a_family(name):
    cls = APPS.get(name)
    assert issubclass(cls, Task) and cls.family is not None
    source = ROOT / "apps" / f"{cls.__module__.rsplit('.', 1)[-1]}.py"
    assert len(source.read_text(encoding="utf-8").splitlines()) <= 150
    # the family, not the app, holds the life cycle and the model
    own = {n for n, v in vars(cls).items() if callable(v)}
    assert not own & {"train", "load", "build_model", "predict_lines",
                      "evaluate_data", "serving_functions"}


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: p.name)
def test_the_library_does_not_print(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            name = (function.id if isinstance(function, ast.Name) else
                    function.attr if isinstance(function, ast.Attribute)
                    else "")
            # runtime.py forwards TensorFlow's own start-up lines
            if name == "print" and path.name == "runtime.py":
                continue
            assert name not in ("print", "echo", "secho"), (
                f"{path.relative_to(ROOT)}:{node.lineno} prints; use the "
                "nlpseq logger")


# -- the layers of docs/design.md, bottom first ---------------------------------

#: Each layer's modules (a package stands for all of its modules). A module
#: imports only from its own layer or the layers below it.
LAYERS = [
    ("foundation", {"nlpseq.log", "nlpseq.errors", "nlpseq.registry",
                    "nlpseq.runtime", "nlpseq.config", "nlpseq.inputs"}),
    ("layers", {"nlpseq.layers"}),
    ("shared", {"nlpseq.data", "nlpseq.text", "nlpseq.decoding",
                "nlpseq.training", "nlpseq.folder", "nlpseq.length_groups",
                "nlpseq.metrics", "nlpseq.tagging", "nlpseq.report",
                "nlpseq.distribute", "nlpseq.schedules", "nlpseq.exporters",
                "nlpseq.onnx_export", "nlpseq.onnx_runtime", "nlpseq.models",
                "nlpseq.ngram_model", "nlpseq.transfer",
                "nlpseq.cascade", "nlpseq.subwords",
                "nlpseq.distillation"}),
    ("tasks", {"nlpseq.tasks"}),
    ("apps", {"nlpseq.apps"}),
    ("api", {"nlpseq.api", "nlpseq.lab"}),
    ("front", {"nlpseq.cli", "nlpseq.server", "nlpseq.__main__",
               "nlpseq"}),
]


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] == "apps":
        parts = ["nlpseq", "apps"] + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module):
    """The layer table's entry that holds ``module``."""
    names = {name for _, names in LAYERS for name in names}
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in names:
            return ".".join(parts[:end])
    raise AssertionError(f"{module} is in no layer of LAYERS: add it (and "
                         "to docs/design.md)")


def _imports():
    """``{module: {(imported module, line)}}`` of nlpseq and apps, every
    import (also those inside functions); ``from nlpseq import
    __version__`` is the version, not the package's API."""
    found = {}
    for path in sorted([*(ROOT / "nlpseq").rglob("*.py"),
                        *(ROOT / "apps").glob("*.py")]):
        module = _module_name(path)
        edges = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {(a.name, node.lineno) for a in node.names
                          if a.name.startswith("nlpseq")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and \
                    (node.module or "").startswith("nlpseq"):
                if node.module == "nlpseq":
                    edges |= {(f"nlpseq.{a.name}", node.lineno)
                              for a in node.names if a.name != "__version__"}
                else:
                    edges.add((node.module, node.lineno))
    return found


def test_every_module_is_in_a_layer_and_imports_none_above_it():
    rank = {name: index for index, (_, names) in enumerate(LAYERS)
            for name in names}
    upward = []
    for module, edges in _imports().items():
        for target, line in edges:
            if rank[_unit(target)] > rank[_unit(module)]:
                upward.append(f"{module}:{line} imports {target}")
    assert not upward, "upward imports: " + "; ".join(sorted(upward))


def test_no_import_circle_between_modules_of_different_units():
    graph = {}
    for module, edges in _imports().items():
        graph.setdefault(_unit(module), set()).update(
            _unit(t) for t, _ in edges if _unit(t) != _unit(module))
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import circle: " + " -> ".join(
                    path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_layer_is_found_by_name():
    """Parts of a model are attributes (``task.backbone``...), never
    ``get_layer`` lookups, in the library and the apps."""
    found = [f"{path.relative_to(ROOT)}:{number}"
             for path in [*(ROOT / "nlpseq").rglob("*.py"),
                          *(ROOT / "apps").glob("*.py")]
             for number, line in enumerate(
                 path.read_text(encoding="utf-8").splitlines(), start=1)
             if "get_layer(" in line]
    assert not found


@pytest.mark.parametrize("name", ["base.py", "trainer.py"])
def test_the_task_base_and_trainer_stay_small(name):
    path = ROOT / "nlpseq" / "tasks" / name
    source = path.read_text(encoding="utf-8")
    if name == "base.py":
        assert len(source.splitlines()) < 450
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > 60]
    assert not long
