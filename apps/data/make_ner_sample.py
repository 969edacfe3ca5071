"""Write ``ner_sample.conll``: the built-in sample of the NER app.

Short news-style sentences from a small grammar, written for nlpseq, with
invented people, places, organisations and events, tagged in IOB2 over PER,
LOC, ORG and MISC, in the CoNLL-2003 column layout (``token POS chunk
tag``; the middle columns are ``-`` placeholders). Deterministic: ``python
make_ner_sample.py`` rewrites the same file.
"""

import random
from pathlib import Path

FIRST = ["Anna", "Peter", "Maria", "Tomas", "Lena", "Jonas", "Clara",
         "Omar", "Ines", "Viktor", "Sofia", "Mateo", "Ruth", "Karim"]
LAST = ["Blackwood", "Kowalski", "Fernandes", "Lindqvist", "Okafor",
        "Moreau", "Halvorsen", "Tanaka", "Brennan", "Castillo", "Novak"]
PLACES = ["Brussels", "Lisbon", "Nairobi", "Oslo", "Toronto", "Kyoto",
          "Valparaiso", "Krakow", "Dublin", "Cairo", "Lyon", "Denver",
          "New Harbor", "Port Elden", "South Marlow"]
ORGS = ["Northwind Bank", "Helix Motors", "the Grain Council",
        "Aster Airlines", "Union Rail", "the Coastal League",
        "Brightwater Energy", "Kestrel Media", "the Harbor Trust", "Orbis"]
MISC = ["Danish", "Brazilian", "German", "Olympic", "Kenyan", "Irish",
        "French", "Canadian", "Japanese", "Polish"]
EVENTS = ["Summer Cup", "Harvest Festival", "Open Championship",
          "Spring Marathon"]
VERBS = ["visited", "left", "praised", "criticised", "joined", "met"]
DAYS = ["Monday", "Tuesday", "Friday", "Sunday"]


def entity(text, kind):
    words = text.split()
    if words[0] == "the":
        return [("the", "O")] + entity(" ".join(words[1:]), kind)
    return [(w, ("B-" if i == 0 else "I-") + kind)
            for i, w in enumerate(words)]


def plain(text):
    return [(w, "O") for w in text.split()]


def sentence(rng):
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    other = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    place, org = rng.choice(PLACES), rng.choice(ORGS)
    misc, event = rng.choice(MISC), rng.choice(EVENTS)
    verb, day = rng.choice(VERBS), rng.choice(DAYS)
    templates = [
        entity(person, "PER") + plain(verb) + entity(place, "LOC")
        + plain(f"on {day} ."),
        entity(org, "ORG") + plain("said on") + plain(day) + plain("that")
        + entity(person, "PER") + plain("will lead its office in")
        + entity(place, "LOC") + plain("."),
        plain("The") + entity(misc, "MISC") + plain("team won the")
        + entity(event, "MISC") + plain("in") + entity(place, "LOC")
        + plain("."),
        entity(person.split()[1], "PER") + plain("told reporters in")
        + entity(place, "LOC") + plain("that") + entity(org, "ORG")
        + plain("had grown ."),
        plain("Shares of") + entity(org, "ORG") + plain("fell after")
        + entity(other, "PER") + plain(f"{verb} the board .")
        + [],
        entity(person, "PER") + plain("and") + entity(other, "PER")
        + plain("met in") + entity(place, "LOC") + plain("."),
        entity(place, "LOC") + plain("-") + entity(misc, "MISC")
        + plain("officials") + plain(verb) + entity(org, "ORG")
        + plain("."),
        plain("A spokesman for") + entity(org, "ORG") + plain("declined to comment ."),
    ]
    return rng.choice(templates)


def main():
    rng = random.Random(2026)
    blocks = []
    for _ in range(400):
        rows = sentence(rng)
        blocks.append("".join(f"{w} - - {t}\n" for w, t in rows))
    # the last 40 sentences are the held-out validation sample
    for name, part in (("ner_sample.conll", blocks[:360]),
                       ("ner_valid.conll", blocks[360:])):
        path = Path(__file__).with_name(name)
        path.write_text("-DOCSTART- -X- -X- O\n\n" + "\n".join(part),
                        encoding="utf-8")
        print(f"wrote {path}: {len(part)} sentences")


if __name__ == "__main__":
    main()
