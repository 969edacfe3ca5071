"""TensorFlow Serving's Classify and Regress APIs: ``tf.Example`` protos
in, each example's classes and scores (or its regression value) out.

A request runs a signature whose SignatureDef's method is TensorFlow
Serving's ``tensorflow/serving/classify`` (or ``.../regress``), with one
input, ``inputs``, taking serialized ``tf.Example`` protos; a request that
names no signature runs ``serving_default``, as in TensorFlow Serving (an
nlpseq classifier's ``serving_default`` is a predict signature: its
Classify signature is ``classification``).

- REST: ``{"signature_name": ..., "context": {feature: value, ...},
  "examples": [{feature: value, ...}, ...]}``. A JSON string is a bytes
  feature (its UTF-8 bytes), ``{"b64": ...}`` the bytes it encodes, an
  integer or a boolean an int64 feature, a decimal number a float feature,
  and a list holds the values of one feature. The answer is
  ``{"results": [[[label, score], ...], ...]}`` (one list of classes per
  example) or ``{"results": [value, ...]}``: the key TensorFlow Serving's
  server writes (its REST documentation says ``result``).
- gRPC: the ``input`` of a ``ClassificationRequest`` or
  ``RegressionRequest`` (``example_list``, or ``example_list_with_context``).

Both become the signature's input, a 1-D array of serialized examples, as
TensorFlow Serving builds it: with a context, its serialization followed
by the example's, which parses as the two merged (an example's own feature
wins over the context's of the same name). The checks and error messages
are TensorFlow Serving's; for an nlpseq export, the texts the examples
hold are checked too (:func:`check_texts`) before they are batched with
other requests.
"""

from __future__ import annotations

import math

import numpy as np

from nlpseq.server.codec import (
    DEFAULT_SIGNATURE,
    DT_STRING,
    debug_string,
    invalid,
    is_b64,
    to_array,
    to_python,
)

#: The SignatureDef method of each API, and the signature's kind in
#: TensorFlow Serving's messages.
METHODS = {"classify": ("tensorflow/serving/classify", "classification"),
           "regress": ("tensorflow/serving/regress", "regression")}
#: The methods whose signatures take serialized ``tf.Example`` protos.
EXAMPLE_METHODS = frozenset(method for method, _ in METHODS.values())
#: The input of a Classify or Regress signature, and its outputs.
INPUTS = "inputs"
CLASSES, SCORES, OUTPUTS = "classes", "scores", "outputs"
#: The bytes feature holding the text of each example of an nlpseq export.
TEXT_FEATURE = "text"

_KINDS = {"bytes_list": "bytes", "float_list": "float",
          "int64_list": "int64"}
_INT64 = (-2**63, 2**63 - 1)
_FLOAT_MAX = float(np.finfo(np.float32).max)


# -- requests ------------------------------------------------------------------

def json_examples(doc):
    """The serialized examples of a REST request's JSON object ``doc``, as
    a 1-D object array of bytes.

    Raises:
        ServingError: INVALID_ARGUMENT, with TensorFlow Serving's messages.
    """
    context = b""
    if "context" in doc:
        context = json_example(doc["context"]).SerializeToString()
    if "examples" not in doc:
        raise invalid(f"JSON Value: {debug_string(doc)} When method is "
                      "classify, key 'examples' is expected and was not found")
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise invalid(f"JSON Value: {debug_string(doc)} Expecting 'examples' "
                      "value to be an list/array")
    if not examples:
        raise invalid(f"JSON Value: {debug_string(doc)} 'examples' value is "
                      "an empty array")
    return _serialized([json_example(e).SerializeToString()
                        for e in examples], context)


def json_example(value):
    """A ``tf.train.Example`` of one JSON object of features."""
    from tensorflow.core.example import example_pb2

    if not isinstance(value, dict):
        raise invalid("Example must be JSON object but got JSON "
                      f"{_json_type(value)}")
    example = example_pb2.Example()
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_value(feature, name, item)
    return example


def _json_type(value):
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return str(value)
    return {dict: "Object", list: "Array", str: "String"}.get(
        type(value), "Number")


def _add_value(feature, name, value):
    """Append one JSON value to ``feature`` (a ``tf.train.Feature``)."""
    if value is None or isinstance(value, list) or (
            isinstance(value, dict) and not is_b64(value)):
        raise invalid(f"Feature: {name} has element with unexpected JSON "
                      f"type: {_json_type(value)}")
    if isinstance(value, (str, dict)):
        kind, value = "bytes_list", to_array(value, DT_STRING).item()
    elif isinstance(value, bool):
        kind, value = "int64_list", int(value)
    elif isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        kind = "int64_list"
    elif isinstance(value, int) and 0 < value < 2**64:
        raise invalid(f"Feature: {name} has uint64 element. Only int64 is "
                      "supported.")
    else:
        kind, value = "float_list", _float(value)
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise invalid(f"Unexpected element type in feature: {name} expecting "
                      f"type: {_KINDS[current]}")
    getattr(feature, kind).value.append(value)


def _float(value):
    """A JSON number as a float feature's value."""
    try:
        number = float(value)
    except OverflowError:  # (an integer beyond any float)
        number = None
    if number is not None and (not math.isfinite(number)
                               or abs(number) <= _FLOAT_MAX):
        return number
    raise invalid(f"Cannot convert JSON value: {debug_string(value)} to "
                  "float without loss of precision.")


def input_examples(input_proto):
    """The serialized examples of a gRPC request's ``Input``, as a 1-D
    object array of bytes.

    Raises:
        ServingError: INVALID_ARGUMENT, no examples.
    """
    kind = input_proto.WhichOneof("kind")
    context, examples = b"", []
    if kind == "example_list":
        examples = input_proto.example_list.examples
    elif kind == "example_list_with_context":
        listed = input_proto.example_list_with_context
        context, examples = listed.context.SerializeToString(), \
            listed.examples
    if not examples:
        raise invalid("Input is empty.")
    return _serialized([e.SerializeToString() for e in examples], context)


def _serialized(examples, context):
    array = np.empty(len(examples), object)
    array[:] = [context + example for example in examples]
    return array


def check_texts(serialized, feature=TEXT_FEATURE):
    """Check that each serialized example holds one UTF-8 text in the bytes
    feature ``feature``, as an nlpseq export's examples must (its graph
    refuses others too, but only once they are batched with other
    requests): the first that does not, named.

    Raises:
        ServingError: INVALID_ARGUMENT.
    """
    from tensorflow.core.example import example_pb2

    for index, data in enumerate(serialized):
        features = example_pb2.Example.FromString(data).features.feature
        where = f"example {index}: "
        if feature not in features:
            raise invalid(f"{where}no feature '{feature}': the model reads "
                          f"each example's text from its bytes feature "
                          f"'{feature}'")
        kind = features[feature].WhichOneof("kind")
        values = getattr(features[feature], kind).value if kind else []
        if kind not in (None, "bytes_list"):
            raise invalid(f"{where}feature '{feature}' holds {_KINDS[kind]} "
                          "values: expected one text (a bytes feature)")
        if len(values) != 1:
            raise invalid(f"{where}feature '{feature}' holds {len(values)} "
                          "values: expected one text")
        try:
            values[0].decode("utf-8")
        except UnicodeDecodeError as error:
            raise invalid(f"{where}feature '{feature}' is not valid UTF-8 "
                          f"text (byte {error.start}); send text, or the "
                          "UTF-8 bytes of a text as {\"b64\": ...}") from None


# -- the signature -------------------------------------------------------------

def method_signature(signature_defs, name, verb):
    """The name of the signature a classify or regress (``verb``) request
    runs (``name``, or ``serving_default``), checked as TensorFlow Serving
    checks it against the SavedModel's ``signature_defs``.

    Raises:
        ServingError: INVALID_ARGUMENT, with TensorFlow Serving's messages.
    """
    name = name or DEFAULT_SIGNATURE
    found = signature_defs.get(name)
    if found is None:
        raise invalid(f"No signature was found with the name: {name}")
    method, kind = METHODS[verb]
    if found.method_name != method:
        raise invalid(f"Expected {kind} signature method_name to be {method}. "
                      f"Was: {found.method_name}")
    if len(found.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    outputs = set(found.outputs)
    if verb == "classify" and len(outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found "
                      f"{len(outputs)}")
    if verb == "regress" and len(outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if INPUTS not in found.inputs:
        raise invalid(f"No {kind} inputs found in SignatureDef: "
                      f"{_debug(found)}")
    if verb == "classify" and not outputs & {CLASSES, SCORES}:
        raise invalid("Expected classification signature outputs to contain "
                      f"at least one of \"{CLASSES}\" or \"{SCORES}\". "
                      f"Signature was: {_debug(found)}")
    if verb == "regress" and OUTPUTS not in outputs:
        raise invalid(f"No regression outputs found in SignatureDef: "
                      f"{_debug(found)}")
    return name


def _debug(proto):
    from google.protobuf import text_format

    return text_format.MessageToString(proto)


def submit(manager, name, version, label, signature_name, verb, examples,
           deadline=None):
    """Queue a classify or regress request: ``(version, signature name,
    rows, future)``. ``examples`` is the serialized examples, or a function
    making them (called once the signature is checked, as TensorFlow
    Serving reads a gRPC request's input after its signature).

    Raises:
        ServingError: as :meth:`ModelManager.submit`, and as
            :func:`method_signature` and :func:`check_texts`.
    """
    served = manager.resolve(name, version, label)
    signature_name = method_signature(served.signature_defs, signature_name,
                                      verb)
    examples = examples() if callable(examples) else examples
    if served.info.get("app"):  # (an nlpseq export: texts inside)
        check_texts(examples)
    _, _, future = manager.submit(name, served.number, None, signature_name,
                                  arrays={INPUTS: examples},
                                  deadline=deadline)
    return served, signature_name, len(examples), future


# -- responses -----------------------------------------------------------------

def classifications(outputs, rows):
    """``(labels, scores)`` of each of ``rows`` examples from a classify
    signature's ``outputs`` (``{name: array}``): lists of the examples'
    class labels (``""`` without ``classes``) and scores (0 without
    ``scores``), checked as TensorFlow Serving checks them.

    Raises:
        ServingError: INVALID_ARGUMENT, outputs of the wrong form.
    """
    classes, scores = outputs.get(CLASSES), outputs.get(SCORES)
    for key, array, dtype in ((CLASSES, classes, "DT_STRING"),
                              (SCORES, scores, "DT_FLOAT")):
        if array is None:
            continue
        if array.ndim != 2:
            raise invalid("Expected Tensor shape: [batch_size num_classes] "
                          f"but got {list(array.shape)}")
        if array.dtype != (object if key == CLASSES else np.float32):
            raise invalid(f"Expected {key} Tensor of {dtype}. Got: "
                          f"{array.dtype}")
        if array.shape[0] != rows:
            raise invalid(f"Expected {key} output batch size of {rows}. "
                          f"Got: {array.shape[0]}")
    if classes is not None and scores is not None and \
            classes.shape[1] != scores.shape[1]:
        raise invalid("Tensors class and score should match in dim_size(1). "
                      f"Got {classes.shape[1]} vs. {scores.shape[1]}")
    count = (classes if classes is not None else scores).shape[1]
    labels = to_python(CLASSES, classes) if classes is not None else \
        [[""] * count for _ in range(rows)]
    values = to_python(SCORES, scores) if scores is not None else \
        [[0.0] * count for _ in range(rows)]
    return labels, values


def regressions(outputs, rows):
    """The regression value of each of ``rows`` examples from a regress
    signature's ``outputs``, checked as TensorFlow Serving checks them.

    Raises:
        ServingError: INVALID_ARGUMENT, an output of the wrong form.
    """
    array = outputs[OUTPUTS]
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise invalid("Expected output Tensor shape to be either "
                      "[batch_size] or [batch_size, 1] but got "
                      f"{list(array.shape)}")
    if array.shape[0] != rows:
        raise invalid("Input batch size did not match output batch size: "
                      f"{rows} vs. {array.shape[0]}")
    if array.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: "
                      f"{array.dtype}")
    return to_python(OUTPUTS, array.reshape(-1))


def json_results(verb, outputs, rows):
    """The REST answer: ``{"results": ...}``."""
    if verb == "regress":
        return {"results": regressions(outputs, rows)}
    labels, scores = classifications(outputs, rows)
    return {"results": [[[label, score] for label, score in zip(*example)]
                        for example in zip(labels, scores)]}


def grpc_response(verb, name, number, signature_name, outputs, rows):
    """The gRPC answer: a ``ClassificationResponse`` or a
    ``RegressionResponse``."""
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    if verb == "regress":
        response = regression_pb2.RegressionResponse()
        for value in regressions(outputs, rows):
            response.result.regressions.add(value=value)
    else:
        response = classification_pb2.ClassificationResponse()
        for example in zip(*classifications(outputs, rows)):
            added = response.result.classifications.add()
            for label, score in zip(*example):
                added.classes.add(label=label, score=score)
    response.model_spec.name = name
    response.model_spec.version.value = number
    response.model_spec.signature_name = signature_name
    return response
