"""The server's configuration files, in TensorFlow Serving's text protobuf
formats: the model config file (``--model-config-file``: a
``ModelServerConfig`` with a ``model_config_list``), the batching
parameters file (``--batching-parameters-file``: ``BatchingParameters``)
and the monitoring config file (read by :mod:`~nlpseq.server.monitoring`),
each checked with one clear error naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nlpseq.errors import NlpseqError
from nlpseq.server.batching import BatchingOptions


def parse_text_proto(path, message, option):
    """``message`` filled from the text protobuf file ``path``.

    Raises:
        NlpseqError: unreadable file (naming ``option``), a syntax error or
            unknown field (naming the file and line).
    """
    from google.protobuf import text_format

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise NlpseqError(f"{option} {path}: cannot read it "
                          f"({getattr(error, 'strerror', None) or error})"
                          ) from None
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as error:
        line = error.GetLine()
        text = str(error)
        if line is not None:
            text = text.split(" : ", 1)[-1]
        where = f"{path}:{line}" if line is not None else str(path)
        raise NlpseqError(f"{where}: {text}") from None
    return message


@dataclass
class ModelConfig:
    """One served model: its name, base path, version policy and labels.

    ``policy`` is ``("latest", n)``, ``("all",)`` or ``("specific",
    frozenset of versions)``.
    """

    name: str
    base_path: Path
    policy: tuple = ("latest", 1)
    labels: dict = field(default_factory=dict)

    def wanted(self, versions):
        """The versions of ``versions`` (numbers found on disk) to serve."""
        kind = self.policy[0]
        if kind == "all":
            return set(versions)
        if kind == "specific":
            return set(versions) & set(self.policy[1])
        return set(sorted(versions)[-self.policy[1]:])


def parse_model_flag(value):
    """``NAME=BASE_PATH`` as a :class:`ModelConfig`.

    Raises:
        NlpseqError: not ``NAME=BASE_PATH``.
    """
    name, sep, path = value.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise NlpseqError(f"--model {value}: expected NAME=BASE_PATH, e.g. "
                          "--model sentiment=saved_models/sentiment/export")
    if "/" in name or ":" in name:
        raise NlpseqError(f"--model {value}: a model name cannot hold '/' "
                          "or ':'")
    return ModelConfig(name, Path(path).expanduser().absolute())


def read_model_config_file(path, check=True):
    """The models of a TensorFlow Serving model config file (text
    protobuf ``ModelServerConfig`` with a ``model_config_list``).

    With ``check`` (unless ``--allow-version-labels-for-unavailable-models``),
    a version label must name a version the model can serve
    (:func:`check_labels`).

    Raises:
        NlpseqError: unreadable file, a syntax error (with its line), no
            models, a model without name or base path, a second model of
            the same name, an unknown platform, a label of a version that
            cannot be served.
    """
    from tensorflow_serving.config import model_server_config_pb2

    config = parse_text_proto(path, model_server_config_pb2.ModelServerConfig(),
                              "--model-config-file")
    return models_of(config, path, Path(path).parent, check)


def models_of(config, where, base, check=True):
    """The :class:`ModelConfig` s of a ``ModelServerConfig`` message (from
    the file ``where``, or a reload request), relative base paths taken
    from ``base``; checked as :func:`read_model_config_file` says.

    Raises:
        NlpseqError: as :func:`read_model_config_file`, naming ``where``.
    """
    path = where
    if config.WhichOneof("config") != "model_config_list" or \
            not config.model_config_list.config:
        raise NlpseqError(f"{path}: no models (expected model_config_list "
                          "{ config { name: ... base_path: ... } ... })")
    models = []
    for entry in config.model_config_list.config:
        if not entry.name or not entry.base_path:
            raise NlpseqError(f"{path}: every config needs a name and a "
                              f"base_path (got name '{entry.name}', "
                              f"base_path '{entry.base_path}')")
        if entry.model_platform not in ("", "tensorflow"):
            raise NlpseqError(f"{path}: model {entry.name}: model_platform "
                              f"'{entry.model_platform}' is not served "
                              "(only tensorflow)")
        if any(m.name == entry.name for m in models):
            raise NlpseqError(f"{path}: model {entry.name} is configured "
                              "twice")
        base_path = Path(entry.base_path).expanduser()
        base_path = base_path if base_path.is_absolute() else \
            (Path(base) / base_path).absolute()
        policy = _policy(path, entry)
        labels = dict(entry.version_labels)
        if check:
            check_labels(path, entry.name, base_path, policy, labels)
        models.append(ModelConfig(entry.name, base_path, policy, labels))
    return models


def _policy(path, entry):
    choice = entry.model_version_policy.WhichOneof("policy_choice")
    if choice == "all":
        return ("all",)
    if choice == "specific":
        if not entry.model_version_policy.specific.versions:
            raise NlpseqError(f"{path}: model {entry.name}: specific "
                              "version policy without versions")
        return ("specific", frozenset(
            entry.model_version_policy.specific.versions))
    return ("latest", max(1, entry.model_version_policy.latest.num_versions))


def check_labels(path, name, base_path, policy, labels):
    """Refuse a version label that names a version the model cannot serve:
    one its specific policy leaves out, or one not in its base path (as
    TensorFlow Serving refuses a label of a version that is not available).

    Raises:
        NlpseqError: the label, its version and why.
    """
    for label, version in sorted(labels.items()):
        if policy[0] == "specific" and version not in policy[1]:
            served = ", ".join(map(str, sorted(policy[1])))
            raise NlpseqError(
                f"{path}: model {name}: version label '{label}' names version "
                f"{version}, which its specific policy does not serve "
                f"(versions {served})")
        if base_path.is_dir() and not (base_path / str(version)).is_dir():
            raise NlpseqError(
                f"{path}: model {name}: version label '{label}' names version "
                f"{version}, which is not in {base_path}")


#: TensorFlow Serving's ``BatchingParameters`` message
#: (``session_bundle_config.proto``), field by field: the stubs of
#: ``tensorflow-serving-api`` do not carry it.
BATCHING_FIELDS = (
    ("max_batch_size", ".google.protobuf.Int64Value"),
    ("batch_timeout_micros", ".google.protobuf.Int64Value"),
    ("max_enqueued_batches", ".google.protobuf.Int64Value"),
    ("num_batch_threads", ".google.protobuf.Int64Value"),
    ("thread_pool_name", ".google.protobuf.StringValue"),
    ("allowed_batch_sizes", "repeated int64"),
    ("pad_variable_length_inputs", "bool"),
    ("enable_large_batch_splitting", ".google.protobuf.BoolValue"),
    ("max_execution_batch_size", ".google.protobuf.Int64Value"),
)
#: The fields that have no counterpart here (one worker per signature;
#: inputs are never padded or split): read, and said to be left aside.
IGNORED_BATCHING_FIELDS = tuple(name for name, _ in BATCHING_FIELDS[3:])


#: TensorFlow Serving's ``MonitoringConfig`` (``monitoring_config.proto``).
MONITORING_MESSAGES = {
    "PrometheusConfig": (("enable", "bool"), ("path", "string")),
    "MonitoringConfig": (
        ("prometheus_config", ".tensorflow.serving.PrometheusConfig"),),
}


def proto_message(name, messages):
    """An empty ``tensorflow.serving.<name>`` message of ``messages``
    (``{message name: ((field, kind), ...)}``, kinds ``bool``, ``string``,
    ``repeated int64`` or a message's full name), for the text formats
    whose classes the ``tensorflow-serving-api`` package does not carry."""
    from google.protobuf import (
        descriptor_pb2,
        descriptor_pool,
        message_factory,
        wrappers_pb2,
    )

    field_ = descriptor_pb2.FieldDescriptorProto
    kinds = {"bool": field_.TYPE_BOOL, "string": field_.TYPE_STRING,
             "repeated int64": field_.TYPE_INT64}
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name=f"nlpseq/{name}.proto", package="tensorflow.serving",
        syntax="proto3", dependency=[wrappers.name])
    for message_name, fields in messages.items():
        message = file.message_type.add(name=message_name)
        for number, (field_name, kind) in enumerate(fields, 1):
            entry = message.field.add(name=field_name, number=number,
                                      label=field_.LABEL_OPTIONAL)
            if kind.startswith("."):
                entry.type, entry.type_name = field_.TYPE_MESSAGE, kind
            else:
                entry.type = kinds[kind]
            if kind.startswith("repeated"):
                entry.label = field_.LABEL_REPEATED
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"tensorflow.serving.{name}"))()


def read_batching_parameters(path, options=None):
    """The :class:`BatchingOptions` of a TensorFlow Serving batching
    parameters file (``max_batch_size { value: 128 }``...) over
    ``options``; and the names of the fields set there that nlpseq leaves
    aside (:data:`IGNORED_BATCHING_FIELDS`).

    Raises:
        NlpseqError: as :func:`parse_text_proto`, or a value out of range.
    """
    parameters = parse_text_proto(
        path, proto_message("BatchingParameters",
                            {"BatchingParameters": BATCHING_FIELDS}),
        "--batching-parameters-file")
    options = options or BatchingOptions()
    values = {}
    for name, minimum in (("max_batch_size", 1), ("batch_timeout_micros", 0),
                          ("max_enqueued_batches", 1)):
        if parameters.HasField(name):
            value = getattr(parameters, name).value
            if value < minimum:
                raise NlpseqError(f"{path}: {name} {value}: expected "
                                  f"{minimum} or more")
            values[name] = value
    given = {field_.name for field_, _ in parameters.ListFields()}
    ignored = [name for name in IGNORED_BATCHING_FIELDS if name in given]
    return BatchingOptions(
        True, values.get("max_batch_size", options.max_batch_size),
        values.get("batch_timeout_micros", options.timeout_micros),
        values.get("max_enqueued_batches", options.max_enqueued_batches)
    ), ignored


def check_models(configs, where="--model"):
    """Refuse two models of one name, and a base path that is not a
    folder.

    Raises:
        NlpseqError: the model and what is wrong.
    """
    names = [c.name for c in configs]
    for name in names:
        if names.count(name) > 1:
            raise NlpseqError(f"{where} {name}: the name is given twice")
    for config in configs:
        if not Path(config.base_path).is_dir():
            raise NlpseqError(f"model {config.name}: base path "
                              f"{config.base_path} is not a folder")


__all__ = ["BATCHING_FIELDS", "IGNORED_BATCHING_FIELDS",
           "MONITORING_MESSAGES", "ModelConfig", "check_labels", "check_models",
           "models_of", "parse_model_flag", "parse_text_proto",
           "proto_message", "read_batching_parameters", "read_model_config_file"]
