"""Name -> class registries for cells and applications.

Command-line choices are read from here, so each name is written once. An
entry is either a class or a lazy ``"module:attribute"`` reference, so that
listing names (for ``--help``) does not import TensorFlow.
"""

import importlib


class Registry:
    """A catalog of named classes that refuses duplicate names."""

    def __init__(self, kind, entries=None):
        self.kind = kind
        self._entries = {}
        for name, target in (entries or {}).items():
            self.register(name, target)

    def register(self, name, target=None):
        """Register ``target`` (a class or ``"module:attr"``) under ``name``.

        Without ``target`` it returns a class decorator.
        """
        if target is None:
            def decorator(cls):
                self.register(name, cls)
                return cls

            return decorator
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"A {self.kind} name must be a non-empty string, got {name!r}."
            )
        if name in self._entries:
            raise ValueError(
                f"A {self.kind} named '{name}' is already registered "
                f"({self.describe(name)})."
            )
        self._entries[name] = target
        return target

    def names(self):
        return sorted(self._entries)

    def describe(self, name):
        """The dotted path of the entry, without importing it."""
        target = self._entries[name]
        if isinstance(target, str):
            return target.replace(":", ".")
        return f"{target.__module__}.{target.__qualname__}"

    def get(self, name):
        if name not in self._entries:
            raise ValueError(
                f"Unknown {self.kind} '{name}', expected one of: "
                f"{', '.join(self.names())}."
            )
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target

    def __contains__(self, name):
        return name in self._entries

    def __iter__(self):
        return iter(self.names())


#: Recurrent layers by the name used on the command line (``--cell``).
CELLS = Registry(
    "cell",
    {
        "rnn": "nlpseq.layers.simple_rnn:SimpleRNN",
        "lstm": "nlpseq.layers.lstm:LSTM",
        "gru": "nlpseq.layers.gru:GRU",
    },
)

#: Apps (task classes) by command name (``nlpseq <app> ...``).
APPS = Registry(
    "app",
    {
        "sentiment": "nlpseq.apps.sentiment:Sentiment",
        "next-word": "nlpseq.apps.next_word:NextWord",
        "ner": "nlpseq.apps.ner:Ner",
        "translation": "nlpseq.apps.translation:Translation",
        "topic": "nlpseq.apps.topic:Topic",
    },
)

#: Export formats (``export --format``): :class:`nlpseq.exporters.Exporter`
#: subclasses by name.
EXPORTERS = Registry(
    "export format",
    {
        "savedmodel": "nlpseq.exporters:SavedModelExporter",
        "onnx": "nlpseq.onnx_export:OnnxExporter",
    },
)
