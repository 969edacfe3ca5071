"""The application pipelines, importable as ``nlpseq.apps``.

Each app registers itself in :data:`nlpseq.registry.APPS` under its command
name (``nlpseq <app> ...``).

The package also holds the apps' samples (``data/``) and configurations
(``configs/``), installed with it, so that they can be named from anywhere:
``--config sentiment_imdb`` (a packaged config, when no file of that name
is there) and ``--data sample:topic_valid`` (a packaged sample, by its file
name without the extension). The command line and the Python API resolve
them (:func:`config_path`, :func:`data_spec`) before the settings are
merged.
"""

from pathlib import Path

from nlpseq.errors import NlpseqError

#: The packaged samples and configs.
DATA = Path(__file__).parent / "data"
CONFIGS = Path(__file__).parent / "configs"
#: The prefix of a packaged sample in a data SPEC.
SAMPLE = "sample:"
_SAMPLE_SUFFIXES = (".csv", ".tsv", ".txt", ".conll", ".jsonl")
_CONFIG_SUFFIXES = (".toml", ".yaml", ".yml")


def samples():
    """The packaged samples' names (file names without the extension)."""
    return sorted(p.stem for p in DATA.iterdir()
                  if p.suffix in _SAMPLE_SUFFIXES)


def configs(app=None):
    """The packaged configs' names (of ``app``'s settings, when given: the
    names that start with it)."""
    prefix = None if app is None else app.replace("-", "_") + "_"
    return sorted(p.stem for p in CONFIGS.iterdir()
                  if p.suffix in _CONFIG_SUFFIXES
                  and (prefix is None or p.stem.startswith(prefix)))


def config_path(value):
    """The config file ``value`` names: the file, when there is one; else
    the packaged config of that name (with or without ``.toml``); else
    ``value`` itself (whose reader says it is not found).

    Raises:
        NlpseqError: a bare name (no folder) that is neither a file nor a
            packaged config (the packaged ones are listed).
    """
    if not isinstance(value, (str, Path)) or Path(value).exists():
        return value
    name = str(value)
    if "/" in name or "\\" in name:
        return value
    for suffix in ("", *_CONFIG_SUFFIXES):
        packaged = CONFIGS / f"{name}{suffix}"
        if packaged.is_file() and packaged.suffix in _CONFIG_SUFFIXES:
            return str(packaged)
    raise NlpseqError(f"Config file not found: {name} (nor a packaged "
                      f"config of that name: {', '.join(configs())})")


def data_spec(spec, option="--data"):
    """``spec`` with a packaged sample (``sample:NAME``) made its path.

    Raises:
        NlpseqError: no packaged sample of that name (the names are listed).
    """
    if spec is None or not str(spec).startswith(SAMPLE):
        return spec
    name = str(spec)[len(SAMPLE):]
    found = [p for p in DATA.iterdir()
             if p.stem == name and p.suffix in _SAMPLE_SUFFIXES]
    if not found:
        raise NlpseqError(f"{option} {spec}: no packaged sample of that "
                          f"name; the samples: {', '.join(samples())}")
    return str(found[0])


__all__ = ["CONFIGS", "DATA", "SAMPLE", "config_path", "configs",
           "data_spec", "samples"]
