"""Run configuration: app defaults < config file < command-line flags.

An app declares its settings once, as :class:`Setting` objects (name, type,
default, help). The command line turns each into a ``--flag`` whose default
is "not given", a TOML or YAML file may set any of them, and :func:`merge`
applies the three layers in one place, checking every value. The effective
configuration is what the model folder records in ``config.json``.

Example:
    >>> settings = [Setting("units", int, 64, "units per layer", minimum=1)]
    >>> merge(settings, file_values={"units": 32}, flags={"units": None})
    {'units': 32}
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from nlpseq.errors import NlpseqError

#: The largest integer a setting takes (TensorFlow reads counts, seeds and
#: caps as 32-bit integers).
INT_MAX = 2**31 - 1

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def flag(name):
    """The command-line flag of the setting ``name``: ``--name-with-dashes``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class Setting:
    """One configurable value of an app.

    Attributes:
        name: the key in config files and ``config.json`` (``snake_case``);
            the flag is ``--name-with-dashes``.
        type: ``int``, ``float``, ``str`` or ``bool``.
        default: the app's default.
        help: one line for ``--help``.
        choices: allowed values (for ``str`` settings).
        minimum: smallest allowed value (numbers).
        maximum: largest allowed value (numbers; an integer is at most
            :data:`INT_MAX` in any case).
        exclusive_minimum: whether ``minimum`` itself is refused.
        flag: whether the command line offers it (a file can always set it).
        multiple: a list of ``type`` values (``str`` only): a list in a
            file or a keyword, or one string of comma-separated values (a
            flag); the value is always a list.
    """

    name: str
    type: type
    default: object
    help: str
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    flag: bool = True
    multiple: bool = False

    @property
    def option(self):
        return flag(self.name)

    def check(self, value, where):
        """``value`` converted to this setting's type, or a clear error."""
        if self.multiple:
            return self.check_list(value, where)
        expected = self.type
        if expected is float and isinstance(value, int) \
                and not isinstance(value, bool):
            value = float(value)
        if expected is bool and not isinstance(value, bool) or (
                expected is not bool and isinstance(value, bool)) or (
                not isinstance(value, expected)):
            raise NlpseqError(
                f"{where}: {self.name} must be {_type_name(expected)}, "
                f"got {value!r}")
        if expected is str and self.default is None and not value.strip():
            # (an unset shell variable: --init-from "$LM")
            raise NlpseqError(f"{where}: {self.name} is empty; expected a "
                              "value (or leave the option out)")
        if expected is float and not math.isfinite(value):
            raise NlpseqError(
                f"{where}: {self.name} must be a finite number, got {value!r}")
        if self.choices and value not in self.choices:
            raise NlpseqError(
                f"{where}: {self.name} must be one of "
                f"{', '.join(map(str, self.choices))}, got {value!r}")
        if self.minimum is not None:
            low = value <= self.minimum if self.exclusive_minimum \
                else value < self.minimum
            if low:
                bound = ">" if self.exclusive_minimum else ">="
                raise NlpseqError(
                    f"{where}: {self.name} must be {bound} {self.minimum}, "
                    f"got {value!r}")
        maximum = self.maximum
        if expected is int and (maximum is None or maximum > INT_MAX):
            maximum = INT_MAX
        if maximum is not None and value > maximum:
            raise NlpseqError(
                f"{where}: {self.name} must be <= {maximum}, got {value!r}")
        return value

    def check_list(self, value, where):
        """The values of a :attr:`multiple` setting, as a list (paths as
        strings)."""
        import os

        if isinstance(value, (list, tuple)):
            value = [os.fspath(v) if isinstance(v, os.PathLike) else v
                     for v in value]
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
            value = [part for part in value if part]
        elif isinstance(value, (list, tuple)) and not value:
            return None  # (an empty list, or a repeatable flag not given)
        if not isinstance(value, (list, tuple)) or not value or not all(
                isinstance(v, str) and v.strip() for v in value):
            raise NlpseqError(
                f"{where}: {self.name} must be a list of strings (or one "
                f"string of comma-separated values), got {value!r}")
        return list(value)


def _type_name(kind):
    return {int: "an integer", float: "a number", str: "a string",
            bool: "true or false"}.get(kind, kind.__name__)


def read_config_file(path) -> dict:
    """The settings in a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file.

    The file is a flat table of ``name = value``; an app's settings may also
    sit under a table named after the app (``[sentiment]``), which
    :func:`merge` is given via ``section``.

    Raises:
        NlpseqError: missing file, unknown extension, or a syntax error (with
            the line where the parser gives one).
    """
    path = Path(path)
    if not path.is_file():
        raise NlpseqError(f"Config file not found: {path}")
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise NlpseqError(
            f"{path}: not UTF-8 text (byte {error.start})") from None
    if suffix == ".toml":
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise NlpseqError(f"{path}: invalid TOML: {error}") from None
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(error, "problem", None) or "syntax error"
            raise NlpseqError(
                f"{path}: invalid YAML{where}: {problem}") from None
        values = {} if values is None else values
    else:
        raise NlpseqError(
            f"{path}: unknown config file type '{suffix or path.name}', "
            "expected .toml, .yaml or .yml")
    if not isinstance(values, dict):
        raise NlpseqError(f"{path}: expected a table of name = value settings")
    return values


class Config(dict):
    """An effective configuration (a ``dict``), which also knows which
    settings were given (by a config file, a flag or a keyword) rather than
    left at their defaults.

    Attributes:
        given: ``{name: where}`` of the settings given (``where``: the flag,
            e.g. ``--units``, or the config file).
    """

    given: dict

    def __init__(self, *args, given=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.given = dict(given or {})


def merge(settings, file_values=None, flags=None, source="config file",
          section=None) -> Config:
    """The effective configuration: defaults, then file values, then flags.

    Args:
        settings: the app's :class:`Setting` list.
        file_values: values read from a config file (may hold a table named
            ``section`` with the app's settings).
        flags: values from the command line; ``None`` means "not given".
        source: the file's name, for messages.
        section: the app's name: a table of that name in the file is used
            (and other top-level tables are ignored, so one file can hold the
            settings of several apps).

    Returns:
        A :class:`Config`: the settings, and which of them were given.

    Raises:
        NlpseqError: an unknown name in the file (listing the known ones), a
            value of the wrong type or out of range (NaN and infinities
            included), or a file whose only tables are other apps' (with
            ``section``).
    """
    by_name = {s.name: s for s in settings}
    config = Config({s.name: s.default for s in settings})
    values = dict(file_values or {})
    if section is not None and section not in values:
        tables = [name for name, value in values.items()
                  if isinstance(value, dict)]
        if tables and len(tables) == len(values):
            raise NlpseqError(
                f"{source}: no settings for {section}: its only tables are "
                f"{', '.join(f'[{name}]' for name in tables)} (other apps' "
                f"settings); add a [{section}] table or top-level settings")
    if section is not None and isinstance(values.get(section), dict):
        nested = values.pop(section)
        values = {k: v for k, v in values.items() if not isinstance(v, dict)}
        values.update(nested)
    for name, value in values.items():
        key = name.replace("-", "_")
        if key not in by_name:
            if isinstance(value, dict):
                continue  # another app's table
            raise NlpseqError(
                f"{source}: unknown setting '{name}'; known settings: "
                f"{', '.join(sorted(by_name))}")
        config[key] = by_name[key].check(value, source)
        config.given[key] = source
    for name, value in (flags or {}).items():
        if value is not None and name in by_name:
            config[name] = by_name[name].check(value, by_name[name].option)
            config.given[name] = by_name[name].option
    return config
