"""Write ``translation_sample.tsv``: the built-in sample of the translation app.

German<TAB>English pairs from a small grammar written for nlpseq, in the
style of image captions: a subject (with an adjective, singular or plural),
an action, and where it happens. German adjective endings and verb forms
agree with the subject. Deterministic: ``python
make_translation_sample.py`` rewrites the same file.
"""

import random
from pathlib import Path

import numpy as np

# (German singular with "ein/eine", English singular, German plural, English
# plural, gender)
NOUNS = [
    ("Mann", "man", "Männer", "men", "m"),
    ("Frau", "woman", "Frauen", "women", "f"),
    ("Kind", "child", "Kinder", "children", "n"),
    ("Junge", "boy", "Jungen", "boys", "m"),
    ("Mädchen", "girl", "Mädchen", "girls", "n"),
    ("Hund", "dog", "Hunde", "dogs", "m"),
    ("Arbeiter", "worker", "Arbeiter", "workers", "m"),
    ("Sängerin", "singer", "Sängerinnen", "singers", "f"),
]
ADJECTIVES = [("alt", "old"), ("jung", "young"), ("groß", "tall"),
              ("klein", "small"), ("glücklich", "happy"), ("müde", "tired")]
# (German 3rd singular, German plural, English -ing form)
ACTIONS = [
    ("spielt Fußball", "spielen Fußball", "playing soccer"),
    ("liest ein Buch", "lesen ein Buch", "reading a book"),
    ("trinkt Kaffee", "trinken Kaffee", "drinking coffee"),
    ("fährt Fahrrad", "fahren Fahrrad", "riding a bike"),
    ("läuft", "laufen", "running"),
    ("sitzt", "sitzen", "sitting"),
    ("steht", "stehen", "standing"),
    ("schläft", "schlafen", "sleeping"),
    ("isst einen Apfel", "essen einen Apfel", "eating an apple"),
    ("singt ein Lied", "singen ein Lied", "singing a song"),
]
PLACES = [
    ("im Park", "in the park"), ("am Strand", "on the beach"),
    ("auf der Straße", "on the street"), ("im Schnee", "in the snow"),
    ("vor einem Gebäude", "in front of a building"),
    ("in der Küche", "in the kitchen"), ("auf einer Bank", "on a bench"),
    ("neben dem Fluss", "next to the river"), ("", ""),
]
NUMBERS = [("Zwei", "Two"), ("Drei", "Three"), ("Vier", "Four")]
ENDINGS = {"m": "er", "f": "e", "n": "es"}


def inflect(adjective, ending):
    """``müde`` + ``er`` is ``müder``."""
    return adjective[:-1] + ending if adjective.endswith("e") else \
        adjective + ending


def article(english_word):
    return "An" if english_word[0] in "aeiou" else "A"


def pair(rng):
    noun, noun_en, plural, plural_en, gender = rng.choice(NOUNS)
    adjective, adjective_en = rng.choice(ADJECTIVES + [("", "")])
    singular_de, plural_de, action_en = rng.choice(ACTIONS)
    place, place_en = rng.choice(PLACES)
    if rng.random() < 0.7:
        ein = "Eine" if gender == "f" else "Ein"
        words = [ein] + ([inflect(adjective, ENDINGS[gender])] if adjective else []) \
            + [noun, singular_de]
        english = adjective_en or noun_en
        words_en = [article(english)] + ([adjective_en] if adjective else []) \
            + [noun_en, "is", action_en]
    else:
        number, number_en = rng.choice(NUMBERS)
        words = [number] + ([inflect(adjective, "e")] if adjective else []) \
            + [plural, plural_de]
        words_en = [number_en] + ([adjective_en] if adjective else []) \
            + [plural_en, "are", action_en]
    if place:
        words.append(place)
        words_en.append(place_en)
    return " ".join(words) + ".", " ".join(words_en) + "."


def main(count=4000, seed=7):
    rng = random.Random(seed)
    seen, rows = set(), []
    while len(rows) < count:
        german, english = pair(rng)
        if german not in seen:
            seen.add(german)
            rows.append(f"{german}\t{english}")
    # a seeded 10 % is the held-out validation sample
    order = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in order]
    cut = len(rows) - len(rows) // 10
    for name, part in (("translation_sample.tsv", rows[:cut]),
                       ("translation_valid.tsv", rows[cut:])):
        path = Path(__file__).with_name(name)
        path.write_text("\n".join(part) + "\n", encoding="utf-8")
        print(f"wrote {len(part)} pairs to {path}")


if __name__ == "__main__":
    main()
