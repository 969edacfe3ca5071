"""The life cycle every task shares: train, load, evaluate, predict, export.

A model family (:mod:`~nlpseq.tasks.classifier`,
:mod:`~nlpseq.tasks.tagger`, :mod:`~nlpseq.tasks.language_model`,
:mod:`~nlpseq.tasks.seq2seq`) is a :class:`Task` subclass that says what is
its own: how it reads data, its :class:`Preprocessor` (vocabularies, labels),
its model, loss, decoding, metrics and output records, and its serving
signatures. An app (``apps/sentiment.py``...) is a short declaration over a
family: a name, defaults, sample data. What every family shares lives here,
once; training is :mod:`nlpseq.tasks.trainer`'s, the model folder
:mod:`nlpseq.folder`'s, the export formats :mod:`nlpseq.exporters`'.

Data flow (the training steps are :class:`~nlpseq.tasks.trainer.Trainer`'s)::

    settings --Task.train--> data --Preprocessor.fit--> preprocessor
    data --Task.encode--> ids --padded_batches--> model.fit (checkpoints/)
    .<name>.training/ --publish--> <model dir>/ (config.json,
        preprocessor.json, model.keras, metrics.json, history.csv)
    <model dir>/ --Task.load--> Task --predict / evaluate / export

Progress goes to the ``nlpseq`` logger (:mod:`logging`): quiet in a library
unless the caller configures logging, printed by the command line.
"""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

from nlpseq import inputs
from nlpseq.config import merge, read_config_file
from nlpseq.errors import NlpseqError
from nlpseq.folder import (
    CONFIG,
    MODEL,
    PREPROCESSOR,
    ModelFolder,
    load_model,
    strict_json,
)
from nlpseq.log import LOG
from nlpseq.tasks.preprocessor import Preprocessor
from nlpseq.tasks.settings import COMMON_SETTINGS, with_defaults

#: ``predict --format`` choices every task has.
FORMATS = ("text", "json", "jsonl", "csv")


class Task:
    """Base of the model families.

    Attributes:
        config: the effective configuration.
        preprocessor: the :class:`Preprocessor`, once fitted or loaded.
        model: the Keras model (ids in), once built or loaded.
        backbone: its :class:`~nlpseq.tasks.encoder.RecurrentEncoder`
            (embedding, joined features, recurrent layers), set by
            :meth:`build_model`.
        folder: the :class:`~nlpseq.folder.ModelFolder` it was loaded from.
    """

    #: The app's command name (``nlpseq <name> ...``); set by the app.
    name = None
    #: The model family (``classifier``, ``tagger``...); set by the family.
    family = None
    #: The settings besides :data:`COMMON_SETTINGS` (family + app).
    settings = ()
    common_defaults = {}  #: The app's defaults of common settings.
    #: Training and validation files used when ``--data`` is not given.
    default_data = None
    default_valid = None
    #: Options of ``predict`` (:class:`~nlpseq.config.Setting`).
    predict_settings = ()
    #: The ``predict`` options that ``evaluate`` takes too (names).
    evaluate_options = ()
    #: ``predict --format`` choices.
    output_formats = FORMATS
    #: Options of ``export``: caps on one request's work (``Setting``).
    export_settings = ()
    #: The family's :class:`Preprocessor` subclass.
    preprocessor_class = Preprocessor
    #: What ``--data SPEC`` reads, and an example file name, for ``--help``.
    data_help = "a data file"
    data_example = "train.csv"
    #: Example inputs of ``predict`` for ``--help``.
    predict_example = "an input"
    #: The demo page's panel for the family's exports (``None``: generic)
    #: and the text it starts with (default: :attr:`predict_example`),
    #: written into the export's ``assets.extra/nlpseq.json``.
    demo_panel = None
    demo_example = None
    #: The family's own commands, by name (built by the command line:
    #: ``nlpseq.cli.commands.FAMILY_COMMANDS``).
    commands = ()
    #: What ``--init-from`` takes from a language model (:mod:`nlpseq.
    #: transfer`): ``"encoder"`` (its embedding and first ``--layers``
    #: recurrent layers), ``"all"`` (every weight and setting: the model
    #: continues it) or ``None`` (the family has no ``--init-from``).
    transfer = None
    #: Whether a model of the family can be ``--init-from``'s source.
    transfer_source = False
    onnx_output_names = None  #: ONNX output names, if not the model's.

    def __init__(self, config, preprocessor=None):
        self.config = config
        self.preprocessor = preprocessor
        self.model = self.backbone = self.folder = None
        #: The ``predict`` options (defaults until set).
        self.options = {s.name: s.default for s in self.predict_settings}

    # -- family hooks --------------------------------------------------------

    def read_data(self, spec, role):
        """*Family hook*: read a data SPEC (``role``: train, valid,
        evaluate)."""
        raise NotImplementedError

    def split_data(self, data, fraction):
        """*Family hook*: ``(train, valid)`` parts of ``data``."""
        raise NotImplementedError

    def describe_data(self, data) -> str:
        """*Family hook*: a short description for progress output."""
        return f"{len(data)} examples"

    def encode(self, data):
        """*Family hook*: ``(inputs, targets)`` for ``padded_batches``."""
        raise NotImplementedError

    def build_model(self):
        """*Family hook*: the Keras model (uncompiled). The parts that
        decoding and serving use are kept as attributes."""
        raise NotImplementedError

    def prepare_model(self, x, y):
        """Fit what is fitted before the network trains, from the encoded
        training data (a fresh run only: a resumed one has it in its
        checkpoint). Nothing by default."""

    def compile_arguments(self) -> dict:
        """*Family hook*: ``loss`` and ``metrics`` for ``model.compile``."""
        return {}

    def evaluate_data(self, data) -> dict:
        """*Family hook*: the metrics of the model on ``data``."""
        raise NotImplementedError

    def format_metrics(self, metrics) -> str:
        """*Family hook*: metrics as readable text."""
        return strict_json(metrics, indent=2)

    def headline(self, metrics) -> str:
        """*Family hook*: one line summing up validation metrics."""
        return ""

    def predict_lines(self, lines):
        """*Family hook*: records (dicts) for a list of input strings."""
        raise NotImplementedError

    def empty_record(self, text):
        """*Family hook*: the record of an empty or blank input ``text``,
        given without running the model (no label, tags, translation);
        ``None`` where an empty input is predicted like any other (the
        language model: the tokens that start a line)."""
        return None

    def format_record(self, record, output_format="text") -> str:
        """*Family hook*: a record as text (``--format text``, or another of
        :attr:`output_formats`)."""
        return strict_json(record, ensure_ascii=False)

    def report_sections(self, data, described, metrics, history):
        """*Family hook*: the evaluation sections of the model's report
        (:mod:`nlpseq.report`) on ``data``, as ``(id, title, html)``."""
        return []

    def onnx_forward(self, ids):
        """*Family hook*: the ONNX graph's outputs from the model's inputs."""
        return self.model(ids, training=False)

    def serving_layers(self):
        """*Family hook*: layers the signatures use besides the model."""
        return []

    def serving_functions(self) -> dict:
        """*Family hook*: the exported signatures, ``{name: (function,
        input_signature)}``."""
        raise NotImplementedError

    def graph_functions(self) -> dict:
        """*Family hook*: the graph functions that prediction runs compiled,
        ``{name: (function, input_signature)}`` (see :meth:`graph_function`)."""
        return {}

    def graph_function(self, name):
        """The ``tf.function`` of :meth:`graph_functions`' entry ``name``,
        traced once for the current model."""
        import tensorflow as tf

        if getattr(self, "_graph_model", None) is not self.model:
            self._graph_model, self._graphs = self.model, {}
        if name not in self._graphs:
            function, signature = self.graph_functions()[name]
            self._graphs[name] = tf.function(
                function, input_signature=signature, autograph=False)
        return self._graphs[name]

    # -- configuration -------------------------------------------------------

    @classmethod
    def all_settings(cls):
        return with_defaults(COMMON_SETTINGS, **cls.common_defaults) + tuple(
            cls.settings)

    @classmethod
    def effective_config(cls, flags=None, config_file=None) -> dict:
        """Defaults < ``config_file`` < ``flags``, checked (a
        :class:`~nlpseq.config.Config`, which knows the settings given).

        Raises:
            NlpseqError: a bad value, or ``valid_split`` given together with
                ``valid`` (which would make the split meaningless).
        """
        file_values = read_config_file(config_file) if config_file else None
        config = merge(cls.all_settings(), file_values, flags,
                       source=str(config_file), section=cls.name)
        if "valid_split" in config.given and config["valid"] is not None:
            raise NlpseqError(
                f"{config.given['valid_split']}: valid_split "
                f"{config['valid_split']} cannot be used with --valid "
                f"{config['valid']} (the validation data is given); drop "
                "one of them")
        if "valid_split" in config.given and config["data"] is None and \
                cls.default_valid is not None:
            raise NlpseqError(
                f"{config.given['valid_split']}: the built-in sample has its "
                f"own validation file ({Path(cls.default_valid).name}); "
                "--valid-split splits the data given with --data")
        return config

    # -- training ------------------------------------------------------------

    @classmethod
    def train(cls, config, model_dir, resume=False, epochs=None,
              verbose=None, overwrite=False):
        """Train a model, publish it in ``model_dir`` and return its task
        (:class:`~nlpseq.tasks.trainer.Trainer` runs it).

        With ``resume``, the interrupted run in ``model_dir``'s staging folder
        continues from its last checkpoint, with its own saved settings;
        ``epochs``, if given, changes its number of epochs.

        The folder's writer lock is held throughout (a second run into it is
        refused). Refused before anything on disk changes: a folder nlpseq
        did not write; another app's model, and an interrupted run that a
        fresh run would discard, unless ``overwrite``. A fresh run that
        fails removes its staging folder unless it left a checkpoint to
        resume from.
        """
        from nlpseq.tasks.trainer import Trainer

        return Trainer.train(cls, config, model_dir, resume, epochs, verbose,
                             overwrite)

    def build_in_precision(self):
        """:meth:`build_model` under the ``precision`` dtype policy (float32
        weights; outputs and losses float32): Keras' global policy is set
        for the build only."""
        import keras

        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.config.get("precision", "float32"))
        try:
            return self.build_model()
        finally:
            keras.config.set_dtype_policy(previous)

    # -- loading -------------------------------------------------------------

    @classmethod
    def load(cls, model_dir):
        """The task saved in ``model_dir``: its config and preprocessor
        read, the model rebuilt by :meth:`build_model`, ``model.keras``'s
        weights loaded into it (no code is deserialized).

        Raises:
            NlpseqError: folder missing, of another app, or corrupted.
        """
        folder = ModelFolder(model_dir)
        # (one model's files, even while another one is being published)
        entries, files = folder.read(app=cls.name, names=(MODEL, PREPROCESSOR))
        try:
            config = merge(cls.all_settings(),
                           {k: v for k, v in entries.get("config", {}).items()
                            if v is not None},
                           source=str(folder.path / CONFIG))
        except NlpseqError as error:
            raise NlpseqError(f"{folder.path / CONFIG}: corrupted "
                              f"({error})") from None
        task = cls(config, cls.preprocessor_class.load(
            folder.path / PREPROCESSOR, config, files[PREPROCESSOR]))
        task.model = load_model(task.build_in_precision, files.pop(MODEL),
                                folder, cls.name)
        task.folder = folder
        return task

    # -- predicting, evaluating, exporting -----------------------------------

    def predict(self, texts, **options):
        """Records for ``texts`` (a list of strings; a single string is one
        text and gives one record). ``options`` are the ``predict``
        options of the task (e.g. ``top_k``)."""
        texts, one = inputs.texts("predict", texts)  # (a Checked iterator)
        records = list(self.predict_stream(texts, **options))
        return records[0] if one else records

    __call__ = predict

    def predict_stream(self, lines, chunk=1024, **options):
        """Records for an iterable of strings, ``chunk`` at a time (constant
        memory); ``options`` (``predict``'s) apply to this call only."""
        inputs.count("predict_stream", "chunk", chunk)
        lines = inputs.text_stream("predict_stream", lines)
        with self.using_options(options):
            done, self._warned_empty = 0, False
            while True:
                block, error = [], None
                try:
                    for line in itertools.islice(lines, chunk):
                        block.append(line)
                except Exception as caught:  # noqa: BLE001 (re-raised below)
                    # (a bad line: what came before it is predicted first)
                    error = caught
                yield from self._predict_block(block, done)
                done += len(block)
                if error is not None:
                    raise error
                if len(block) < chunk:
                    return

    @contextlib.contextmanager
    def using_options(self, options):
        """The ``predict`` options ``options`` (checked) in
        :attr:`options` for the ``with`` block only; the previous ones
        after it."""
        saved = self.options
        inputs.unknown_keywords(f"{self.name} predict", options,
                                [s.name for s in self.predict_settings])
        if options:
            self.options = dict(saved, **merge(
                self.predict_settings, None, options, source="options"))
        try:
            yield self.options
        finally:
            self.options = saved

    def _predict_block(self, block, done):
        """Records of the inputs ``block`` (``done`` inputs came before
        them): empty inputs get :meth:`empty_record`, with one warning per
        call, and the others :meth:`predict_lines`."""
        empty = [index for index, line in enumerate(block) if not line.strip()]
        records = {index: self.empty_record(block[index]) for index in empty}
        if not any(record is not None for record in records.values()):
            if block:
                yield from self.predict_lines(block)
            return
        first = next(i for i in empty if records[i] is not None)
        if not self._warned_empty:
            self._warned_empty = True
            LOG.warning("input %d is empty: its record has an empty result "
                        "(no prediction), as has every empty input",
                        done + first + 1)
        rest = [line for index, line in enumerate(block)
                if records.get(index) is None]
        predicted = iter(self.predict_lines(rest) if rest else ())
        for index in range(len(block)):
            record = records.get(index)
            yield record if record is not None else next(predicted)

    def evaluate(self, data, **options):
        """The metrics on ``data`` (a SPEC, or what :meth:`read_data`
        reads), decoded with ``options`` (:attr:`evaluate_options`)."""
        inputs.unknown_keywords(f"{self.name} evaluate", options,
                                self.evaluate_options)
        data = inputs.data_argument("evaluate", data, self.read_data)
        LOG.info("Evaluating on %s", self.describe_data(data),
                 extra={"progress": True})
        with self.using_options(options):
            return self.evaluate_data(data)

    def report(self, data=None, output=None):
        """Write the HTML report of the model (:mod:`nlpseq.report`): one
        self-contained, offline file with the settings, data summary,
        training curves and the family's evaluation on ``data``.

        Args:
            data: a data SPEC, or data as read by :meth:`read_data`
                (default: the validation data the model was trained with,
                when it can be found; otherwise the evaluation sections are
                skipped with a note).
            output: the HTML file (default: ``<model dir>/report.html``).

        Returns:
            The path written.
        """
        from nlpseq.report import write_report

        return write_report(self, data=data, output=output)

    def export(self, output=None, version=None, format="savedmodel", **limits):
        """Write a SavedModel for TensorFlow Serving, or the model as ONNX
        (``format="onnx"``: ``model.onnx`` and ``preprocessor.json``, see
        :mod:`nlpseq.onnx_export`), in ``<output>/<version>/``: one of
        :data:`nlpseq.registry.EXPORTERS`, written atomically
        (:func:`nlpseq.folder.write_version`).

        Args:
            output: the base folder (default: ``<model dir>/export[-onnx]``).
            version: the version number (default: one above the highest
                there, or 1).
            format: ``"savedmodel"`` or ``"onnx"`` (needs the ``onnx``
                extra).
            limits: caps of :attr:`export_settings` (``max_beam_width=8``...).

        Returns:
            The path written.
        """
        from nlpseq.exporters import check_format, limited
        from nlpseq.folder import export_lock, write_version

        output = inputs.path_argument("export", "output", output)
        inputs.count("export", "version", version, optional=True)
        exporter = check_format(format)
        task = limited(self, exporter, limits)  # (the caps checked first)
        if output is None and self.folder is None:
            raise NlpseqError("export: give an output folder (this model "
                              "was not loaded from a model folder)")
        output = Path(output) if output else self.folder.path / exporter.base
        if output.exists() and not output.is_dir():
            raise NlpseqError(f"--output {output}: not a folder")
        # One export at a time into a base folder, and none into a model
        # folder while a new model is swapped in for it (which carries its
        # export/ versions over): the lock waits for the other one.
        with export_lock(output, self.folder):
            return write_version(output, version,
                                 lambda folder: exporter.write(task, folder))
