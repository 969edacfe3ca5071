"""Tensors in and out of JSON as TensorFlow Serving's REST API has them.

Requests: the row format (``{"instances": [...]}``: one element per input
row; with several inputs, each element an object of them) or the columnar
format (``{"inputs": value}``, or an object of named values). JSON strings
become UTF-8 bytes, ``{"b64": "..."}`` the bytes it encodes; numbers and
booleans are checked against the signature's dtypes, and the shapes against
its shapes.

Responses: ``{"predictions": [...]}`` (row format: a value per row with one
output, an object per row with several) or ``{"outputs": ...}`` (columnar:
the value itself with one output, an object with several). String outputs
are UTF-8 text, those whose name ends in ``_bytes`` ``{"b64": ...}``;
float32 numbers are written with their shortest decimal form, NaN and the
infinities as ``NaN``, ``Infinity`` and ``-Infinity``, as TensorFlow Serving
writes them.

Errors are :class:`ServingError`, a gRPC status code and a message, with
TensorFlow Serving's HTTP status for each code.
"""

from __future__ import annotations

import base64
import binascii
import json

import numpy as np

#: HTTP status of each gRPC status code, as TensorFlow Serving maps them.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
#: gRPC status code names by number (``tf.errors.OpError.error_code``).
CODE_NAMES = list(HTTP_STATUS)

#: The signature used when a request names none.
DEFAULT_SIGNATURE = "serving_default"

#: TensorFlow's DataType numbers of the dtypes JSON can carry.
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = \
    1, 2, 3, 4, 5, 6, 7
DT_INT64, DT_BOOL, DT_UINT32, DT_UINT64 = 9, 10, 22, 23
#: ``(name in error messages, NumPy dtype)`` of each DataType.
DTYPES = {
    DT_FLOAT: ("float", np.float32), DT_DOUBLE: ("double", np.float64),
    DT_INT32: ("int32", np.int32), DT_UINT8: ("uint8", np.uint8),
    DT_INT16: ("int16", np.int16), DT_INT8: ("int8", np.int8),
    DT_STRING: ("string", object), DT_INT64: ("int64", np.int64),
    DT_BOOL: ("bool", np.bool_), DT_UINT32: ("uint32", np.uint32),
    DT_UINT64: ("uint64", np.uint64),
}
_RANGES = {DT_INT32: (-2**31, 2**31 - 1), DT_INT16: (-2**15, 2**15 - 1),
           DT_INT8: (-2**7, 2**7 - 1), DT_UINT8: (0, 2**8 - 1),
           DT_INT64: (-2**63, 2**63 - 1), DT_UINT32: (0, 2**32 - 1),
           DT_UINT64: (0, 2**64 - 1)}


class ServingError(Exception):
    """A failed request: a gRPC status code name (``"NOT_FOUND"``...) and a
    message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS.get(self.code, 500)

    def json(self):
        return json.dumps({"error": self.message}, ensure_ascii=False)


def invalid(*parts):
    return ServingError("INVALID_ARGUMENT", "".join(str(p) for p in parts))


def dtype_name(dtype):
    return DTYPES.get(dtype, (f"type {dtype}", None))[0]


def shape_text(shape):
    """``[2,-1]``, or ``[?]`` for an unknown rank (``None``)."""
    if shape is None:
        return "[?]"
    return "[" + ",".join(str(d) for d in shape) + "]"


# -- requests ------------------------------------------------------------------

def debug_string(value, limit=256):
    """A JSON value in an error message, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[:limit]


def parse_json(body):
    """The request body's JSON object.

    Raises:
        ServingError: empty body, not JSON, not an object.
    """
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except UnicodeDecodeError as error:
        raise invalid("JSON Parse error: Invalid encoding in string. at "
                      f"offset: {error.start}") from None
    except json.JSONDecodeError as error:
        raise invalid(f"JSON Parse error: {error.msg} at offset: "
                      f"{error.pos}") from None
    except RecursionError:
        raise invalid("JSON Parse error: nested too deeply") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {debug_string(doc)} Is not object")
    return doc


def request_signature_name(doc):
    """The request's ``signature_name`` (``""`` when absent)."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(f"JSON Value: {debug_string(doc)} not formatted "
                      "correctly. 'signature_name' key must be a string "
                      "value.")
    return name


def is_b64(value):
    return (isinstance(value, dict) and len(value) == 1
            and isinstance(value.get("b64"), str))


def _type_name(value):
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value, dtype):
    return invalid(f"JSON Value: {debug_string(value)} Type: "
                   f"{_type_name(value)} is not of expected type: "
                   f"{dtype_name(dtype)}")


def _leaf(value, dtype):
    """One JSON leaf as a value of ``dtype``."""
    if dtype == DT_STRING:
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        if isinstance(value, dict):
            if not is_b64(value):
                raise invalid(f"JSON Value: {debug_string(value)} not "
                              "formatted correctly for base64 data")
            text = value["b64"]
            text += "=" * (-len(text) % 4)
            for alphabet in (None, b"-_"):  # (standard, or URL-safe)
                try:
                    return base64.b64decode(text, alphabet, validate=True)
                except (binascii.Error, ValueError):
                    pass
            raise invalid("Unable to base64 decode")
        raise _type_error(value, dtype)
    if isinstance(value, bool):
        if dtype == DT_BOOL:
            return value
        raise _type_error(value, dtype)
    if dtype in (DT_FLOAT, DT_DOUBLE):
        if isinstance(value, (int, float)):
            return value
        raise _type_error(value, dtype)
    if dtype in _RANGES:
        low, high = _RANGES[dtype]
        if isinstance(value, int) and low <= value <= high:
            return value
        raise _type_error(value, dtype)
    if dtype == DT_BOOL:
        raise _type_error(value, dtype)
    raise ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: "
                       f"{debug_string(value)} to type: {dtype_name(dtype)}")


#: The most nested lists a tensor's JSON value may have (NumPy's limit is
#: 64 dimensions, and a row of ``instances`` gets one more).
MAX_RANK = 32


def _dense_shape(value):
    """The shape a JSON value gives, from its first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_RANK:
            raise invalid(f"JSON Value: lists nested more than {MAX_RANK} "
                          "levels deep (a tensor has at most "
                          f"{MAX_RANK} dimensions here)")
        if not value:
            break
        value = value[0]
    return shape


def _flatten(value, level, shape, dtype, out):
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid(f"JSON Value: {debug_string(value)} found at "
                          f"incorrect level: {level + 1} in the JSON DOM. "
                          f"Expected at level: {len(shape)}")
        out.append(_leaf(value, dtype))
        return
    if level >= len(shape):
        raise invalid(f"Encountered list at unexpected level: {level} "
                      f"expected < {len(shape)}")
    if len(value) != shape[level]:
        raise invalid(f"Encountered list at unexpected size: {len(value)} "
                      f"at level: {level} expected size: {shape[level]}")
    for item in value:
        _flatten(item, level + 1, shape, dtype, out)


def to_array(value, dtype):
    """A JSON value (nested lists or a scalar) as a NumPy array of the
    DataType ``dtype``."""
    shape = _dense_shape(value)
    if dtype == DT_STRING and len(shape) == 1 and all(
            isinstance(v, str) for v in value):
        # (the common case, a list of texts)
        array = np.empty(len(value), object)
        array[:] = [v.encode("utf-8", "surrogatepass") for v in value]
        return array
    flat = []
    _flatten(value, 0, shape, dtype, flat)
    numpy_dtype = DTYPES[dtype][1]
    if numpy_dtype is object:
        array = np.empty(len(flat), object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, numpy_dtype).reshape(shape)


def _rows_of(name, value, dtype, sizes):
    """One instance's value of input ``name``; checks that it has the size
    and shape of the first instance's."""
    array = to_array(value, dtype)
    first = sizes.setdefault(name, array.shape)
    if array.size != int(np.prod(first)):
        raise invalid(f"Expecting tensor size: {int(np.prod(first))} but "
                      f"got: {array.size}")
    if array.shape != first:
        raise invalid(f"Expecting shape {shape_text(first)} but got: "
                      f"{shape_text(array.shape)}")
    return array


def _stack(arrays, dtype):
    if not arrays[0].shape and DTYPES[dtype][1] is object:
        stacked = np.empty(len(arrays), object)
        stacked[:] = [a.item() for a in arrays]
        return stacked
    return np.stack(arrays)


def instances_to_arrays(instances, inputs):
    """The row format's ``instances`` as ``{input name: array}``
    (``inputs``: the signature's ``{name: TensorInfo}``)."""
    names = sorted(inputs)
    first = instances[0]
    if (not isinstance(first, dict) or is_b64(first)) and len(names) > 1:
        raise invalid("instances is a plain list, but expecting list of "
                      "objects as multiple input tensors required as per "
                      "tensorinfo_map")
    objects = isinstance(first, dict) and not is_b64(first)
    if not objects:
        name = names[0]
        dtype = inputs[name].dtype
        if dtype == DT_STRING and all(isinstance(v, str) for v in instances):
            return {name: to_array(instances, dtype)}
        sizes, rows = {}, []
        for index, item in enumerate(instances):
            if isinstance(item, dict) and not is_b64(item):
                raise invalid(f"Expecting value/list but got object at item "
                              f"{index} of input list")
            try:
                rows.append(_rows_of(name, item, dtype, sizes))
            except ServingError as error:
                raise invalid(f"Failed to process element: {index} of "
                              f"'instances' list. Error: {error.code}: "
                              f"{error.message}") from None
        return {name: _stack(rows, dtype)}
    sizes, rows = {}, {name: [] for name in names}
    for index, item in enumerate(instances):
        if not isinstance(item, dict) or is_b64(item):
            raise invalid(f"Expecting object but got list at item {index} "
                          "of input list")
        for key, value in item.items():
            if key not in inputs:
                raise invalid(f"Failed to process element: {index} key: "
                              f"{key} of 'instances' list. Error: "
                              "INVALID_ARGUMENT: JSON object: does not have "
                              f"named input: {key}")
            try:
                rows[key].append(_rows_of(key, value, inputs[key].dtype,
                                          sizes))
            except ServingError as error:
                raise invalid(f"Failed to process element: {index} key: "
                              f"{key} of 'instances' list. Error: "
                              f"{error.code}: {error.message}") from None
        if set(item) != set(names):
            raise invalid(f"Failed to process element: {index} of "
                          f"'instances' list. JSON object: "
                          f"{debug_string(item)} keys must be equal to: "
                          f"{','.join(names)}")
    return {name: _stack(rows[name], inputs[name].dtype) for name in names}


def columns_to_arrays(value, inputs):
    """The columnar format's ``inputs`` as ``{input name: array}``."""
    names = sorted(inputs)
    if not isinstance(value, dict) or is_b64(value):
        if len(names) > 1:
            raise invalid("inputs is a plain value/list, but expecting an "
                          "object as multiple input tensors required as per "
                          "tensorinfo_map")
        return {names[0]: to_array(value, inputs[names[0]].dtype)}
    arrays = {}
    for name in names:
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        arrays[name] = to_array(value[name], inputs[name].dtype)
    return arrays


def decode_predict(doc, inputs):
    """``(arrays, row_format)`` of a predict request's JSON object ``doc``
    for a signature with the inputs ``inputs``.

    Raises:
        ServingError: INVALID_ARGUMENT, with TensorFlow Serving's messages.
    """
    if not inputs:
        raise invalid("Failed to get input map for signature")
    if "instances" in doc:
        if "inputs" in doc:
            raise invalid(f"JSON Value: {debug_string(doc)} Not formatted "
                          "correctly expecting only one of 'inputs' or "
                          "'instances' keys to exist ")
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {debug_string(doc)} Expecting "
                          "'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {debug_string(doc)} No values in "
                          "'instances' array")
        return instances_to_arrays(instances, inputs), True
    if "inputs" in doc:
        return columns_to_arrays(doc["inputs"], inputs), False
    raise invalid("Missing 'inputs' or 'instances' key")


def check_inputs(arrays, inputs, signature_name):
    """Check ``{name: array}`` against the signature's inputs: the same
    names, each of the signature's dtype and shape; the number of rows.

    Raises:
        ServingError: INVALID_ARGUMENT.
    """
    if set(arrays) != set(inputs):
        extra = sorted(set(arrays) - set(inputs))
        missing = sorted(set(inputs) - set(arrays))
        raise invalid(
            f"input size does not match signature: {len(arrays)}!="
            f"{len(inputs)} len({{{','.join(sorted(arrays))}}}) != "
            f"len({{{','.join(sorted(inputs))}}}). Sent extra: "
            f"{{{','.join(extra)}}}. Missing but required: "
            f"{{{','.join(missing)}}}.")
    for name, array in arrays.items():
        info = inputs[name]
        if info.numpy_dtype is not None and array.dtype != info.numpy_dtype:
            got = "string" if array.dtype == object else array.dtype.name
            raise invalid(f"input '{name}' of signature '{signature_name}' "
                          f"expects {dtype_name(info.dtype)} values but got "
                          f"{got}")
        shape = info.shape
        if shape is not None and (len(shape) != array.ndim or any(
                want not in (-1, got)
                for want, got in zip(shape, array.shape))):
            raise invalid(f"input '{name}' of signature '{signature_name}' "
                          f"expects shape {shape_text(shape)} but got "
                          f"{shape_text(array.shape)}")


def check_text(arrays, inputs, signature_name):
    """Check that the string inputs are UTF-8 text, as an nlpseq export's
    are (its graph refuses other bytes too, but only after they were
    batched with other requests): the first that is not, named.

    Raises:
        ServingError: INVALID_ARGUMENT.
    """
    for name, array in arrays.items():
        if inputs[name].dtype != DT_STRING or name.endswith("_bytes"):
            continue
        for index, value in enumerate(array.reshape(-1)):
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as error:
                raise invalid(
                    f"input '{name}' of signature '{signature_name}': "
                    f"element {index} is not valid UTF-8 text (byte "
                    f"{error.start}); send text, or the UTF-8 bytes of a "
                    "text as {\"b64\": ...}") from None


def batch_rows(arrays):
    """The rows of a request: the first dimension its inputs share (1 for
    scalars)."""
    rows = {a.shape[0] for a in arrays.values() if a.ndim}
    if len(rows) > 1:
        raise invalid("the inputs do not have the same batch size (first "
                      f"dimension): {', '.join(map(str, sorted(rows)))}")
    return rows.pop() if rows else 1


# -- responses -----------------------------------------------------------------

def to_python(name, array):
    """An output array as nested Python lists (or a scalar) for JSON."""
    if array.dtype == object or array.dtype.kind == "S":
        if name.endswith("_bytes"):
            items = [{"b64": base64.b64encode(v).decode("ascii")}
                     for v in array.ravel().tolist()]
        else:
            items = [v.decode("utf-8", "replace") if isinstance(v, bytes)
                     else v for v in array.ravel().tolist()]
        if array.ndim == 1:
            return items
        flat = np.empty(len(items), object)
        flat[:] = items
        return flat.reshape(array.shape).tolist()
    if array.dtype == np.float32:
        # shortest decimal of each float32, as TensorFlow Serving writes it
        return array.astype(str).astype(np.float64).tolist()
    if array.dtype.kind == "f":
        return array.astype(np.float64).tolist()
    return array.tolist()


def row_predictions(columns, names, start, stop):
    """The row format's predictions of rows ``start:stop`` of the converted
    outputs ``columns`` (``{name: list}``)."""
    if len(names) == 1:
        return columns[names[0]][start:stop]
    parts = [columns[name][start:stop] for name in names]
    return [dict(zip(names, values)) for values in zip(*parts)]


def check_row_outputs(arrays):
    """The row format needs every output batched, to the same size."""
    size = None
    for name, array in sorted(arrays.items()):
        if not array.ndim:
            raise invalid(f"Tensor name: {name} has no shape information ")
        if size is not None and array.shape[0] != size:
            raise invalid(f"Tensor name: {name} has inconsistent batch size: "
                          f"{array.shape[0]} expecting: {size}")
        size = array.shape[0]


def dumps(value):
    """JSON text (UTF-8 bytes) of a response; NaN and the infinities as
    TensorFlow Serving writes them."""
    return json.dumps(value, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
