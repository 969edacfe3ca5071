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
