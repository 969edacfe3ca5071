"""Parallel corpora for translation: one data SPEC in, sentence pairs out.

A parallel SPEC is one of:

- a TSV file of pairs, ``source<TAB>target[<TAB>anything]`` (the
  Tatoeba/Anki format; plain or ``.gz``); with ``reverse`` the first column
  is the target;
- two aligned files, ``SOURCE_FILE,TARGET_FILE`` (line *i* of one translates
  line *i* of the other);
- a pattern holding ``{lang}``, such as ``multi30k/train.{lang}.gz``: the
  two aligned files of the source and the target language;
- ``tfds:NAME[:SPLIT]``, a TensorFlow Datasets translation dataset whose
  features are named by language (``de``, ``en``...).

Pairs with an empty side are skipped and counted; everything else that is
wrong (a missing file, aligned files of different lengths, a TSV line
without a tab, bytes that are not UTF-8) is one error line naming the file
and the line.

Example:
    >>> pairs = read_parallel("multi30k/val.{lang}", "de", "en")  # doctest: +SKIP
    >>> pairs.sources[0], pairs.targets[0]  # doctest: +SKIP
    ('Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen',
     'A group of men are loading cotton onto a truck')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nlpseq.data._files import existing_file, iter_lines
from nlpseq.data.tfds import (
    is_tfds_spec,
    open_builder,
    parse_tfds_spec,
    read_tfds_strings,
)
from nlpseq.errors import NlpseqError

LANG_FIELD = "{lang}"


@dataclass
class ParallelTexts:
    """Aligned source and target sentences, and where they came from."""

    sources: list
    targets: list
    source: str
    #: pairs left out because one side was empty
    skipped: int = 0

    def __len__(self):
        return len(self.sources)

    def split(self, cut):
        """``(head, tail)``: pairs before and from index ``cut``."""
        return (ParallelTexts(self.sources[:cut], self.targets[:cut],
                              self.source),
                ParallelTexts(self.sources[cut:], self.targets[cut:],
                              self.source))


def _existing(spec: str) -> Path:
    return existing_file(spec, "a text file (plain or .gz)")


def _read_tsv(spec: str, reverse: bool):
    sources, targets = [], []
    for number, line in enumerate(iter_lines(_existing(spec), spec), 1):
        if not line.strip():
            sources.append("")
            targets.append("")
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise NlpseqError(
                f"{spec}:{number}: expected source<TAB>target, found no tab")
        source, target = fields[0], fields[1]
        if reverse:
            source, target = target, source
        sources.append(source)
        targets.append(target)
    return sources, targets


def _read_aligned(source_spec: str, target_spec: str):
    sources = list(iter_lines(_existing(source_spec), source_spec))
    targets = list(iter_lines(_existing(target_spec), target_spec))
    if len(sources) != len(targets):
        raise NlpseqError(
            f"{source_spec} has {len(sources):,} lines but {target_spec} has "
            f"{len(targets):,}; aligned files need one line per sentence on "
            "both sides")
    return sources, targets


def _read_tfds(spec: str, source_lang: str, target_lang: str):
    name, split = parse_tfds_spec(spec)
    tfds, builder, shown = open_builder(name, split)
    features = builder.info.features
    keys = list(features.keys()) if hasattr(features, "keys") else []
    for lang in (source_lang, target_lang):
        if lang not in keys:
            raise NlpseqError(
                f"{shown}: no feature for language {lang!r}; features: "
                f"{', '.join(keys) or 'none'} (set --source-lang and "
                "--target-lang)")
    return read_tfds_strings(tfds, name, split, (source_lang, target_lang),
                             shown, builder=builder)


def read_parallel(spec, source_lang: str = "de", target_lang: str = "en",
                  reverse: bool = False) -> ParallelTexts:
    """Read the sentence pairs a SPEC names (see the module docstring).

    Raises:
        NlpseqError: as described in the module docstring, and when no pair
            is left.
    """
    spec = os.fspath(spec).strip()
    if not spec:
        raise NlpseqError("empty data spec: give a TSV file, SOURCE,TARGET "
                          "files, a FILE.{lang} pattern or tfds:NAME[:SPLIT]")
    if is_tfds_spec(spec):
        sources, targets = _read_tfds(spec, source_lang, target_lang)
    elif LANG_FIELD in spec:
        sources, targets = _read_aligned(
            spec.replace(LANG_FIELD, source_lang),
            spec.replace(LANG_FIELD, target_lang))
    elif "," in spec and not Path(spec).expanduser().exists():
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) != 2 or not all(parts):
            raise NlpseqError(
                f"{spec}: expected two aligned files as SOURCE,TARGET")
        if reverse:
            parts.reverse()
        sources, targets = _read_aligned(*parts)
    else:
        sources, targets = _read_tsv(spec, reverse)
    kept_sources, kept_targets = [], []
    for source, target in zip(sources, targets):
        source, target = source.strip(), target.strip()
        if source and target:
            kept_sources.append(source)
            kept_targets.append(target)
    skipped = len(sources) - len(kept_sources)
    if not kept_sources:
        raise NlpseqError(f"{spec}: no sentence pairs (every line has an "
                          "empty side)")
    return ParallelTexts(kept_sources, kept_targets, spec, skipped)
