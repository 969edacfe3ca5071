"""Write ``next_word_sample.txt``: the built-in corpus of the next-word app.

Short everyday sentences from a small grammar, written for nlpseq, with the
patterns a language model should pick up: what people eat on which day,
pronouns that agree ("he won his match", "they wanted more for
themselves"), a subject that changes mid-sentence ("krish likes pizza but
his friend likes burger"). One sentence per line, lower case, punctuation
split off (PTB style). Deterministic: ``python make_next_word_sample.py``
rewrites the same file.
"""

import random
from pathlib import Path

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
        "sunday"]
FOODS = ["pizza", "pasta", "burger", "salad", "soup", "rice", "noodles",
         "curry", "fish", "bread", "cake", "ice cream", "pancakes", "tacos"]
DRINKS = ["tea", "coffee", "juice", "water", "milk", "lemonade"]
PEOPLE = [("krish", "he", "his", "him", "himself"),
          ("maria", "she", "her", "her", "herself"),
          ("tom", "he", "his", "him", "himself"),
          ("anna", "she", "her", "her", "herself"),
          ("the kids", "they", "their", "them", "themselves"),
          ("my parents", "they", "their", "them", "themselves"),
          ("sam", "he", "his", "him", "himself"),
          ("lena", "she", "her", "her", "herself")]
RELATIONS = ["friend", "sister", "brother", "teacher", "neighbour", "cousin"]
PLACES = ["the park", "the beach", "the market", "the library", "school",
          "the station", "the cinema", "the mountains", "the city"]
GAMES = ["match", "game", "race", "final"]
WEATHER = ["sunny", "rainy", "cold", "warm", "windy", "cloudy"]
ACTIVITIES = ["play football", "read a book", "watch a movie",
              "go swimming", "visit friends", "cook dinner", "go shopping",
              "clean the house", "walk the dog", "ride a bike"]
ADJECTIVES = ["good", "great", "nice", "bad", "boring", "wonderful",
              "terrible", "fine"]


def sentences(rng):
    day, food, drink = rng.choice(DAYS), rng.choice(FOODS), rng.choice(DRINKS)
    name, subject, possessive, obj, reflexive = rng.choice(PEOPLE)
    other = rng.choice([f for f in FOODS if f != food])
    place, activity = rng.choice(PLACES), rng.choice(ACTIVITIES)
    game, weather = rng.choice(GAMES), rng.choice(WEATHER)
    relation, adjective = rng.choice(RELATIONS), rng.choice(ADJECTIVES)
    verb = "like" if subject == "they" else "likes"
    want = "want" if subject == "they" else "wants"
    templates = [
        f"on {day} i want to eat {food} .",
        f"on {day} we want to eat {food} and drink {drink} .",
        f"every {day} {name} eats {food} for lunch .",
        f"{name} {verb} {food} but {possessive} {relation} likes {other} .",
        f"{subject} won {possessive} {game} on {day} .",
        f"{name} won {possessive} {game} and {subject} was happy .",
        f"{subject} wanted more for {reflexive} .",
        f"{name} {want} to {activity} on {day} .",
        f"on {day} it was {weather} so {name} stayed at home .",
        f"when it is {weather} i like to go to {place} .",
        f"after school {name} went to {place} with {possessive} {relation} .",
        f"i asked {obj} to {activity} with me .",
        f"the {food} was {adjective} and the {drink} was {adjective} .",
        f"this movie is {adjective} .",
        f"this movie is not {adjective} .",
        f"for breakfast i drink {drink} and eat {food} .",
        f"tomorrow is {day} and i want to {activity} .",
        f"{possessive} {relation} cooked {food} for {obj} on {day} .",
        f"we met at {place} on {day} and ate {food} .",
        f"do you want {food} or {other} for dinner ?",
    ]
    return rng.choice(templates)


def main():
    rng = random.Random(2026)
    lines = [sentences(rng) for _ in range(6000)]
    # the last lines holding 10 % of the characters are the held-out
    # validation sample
    total, kept, cut = sum(len(line) + 1 for line in lines), 0, len(lines)
    for index, line in enumerate(lines):
        if kept >= 0.9 * total:
            cut = index
            break
        kept += len(line) + 1
    for name, part in (("next_word_sample.txt", lines[:cut]),
                       ("next_word_valid.txt", lines[cut:])):
        path = Path(__file__).with_name(name)
        path.write_text("".join(line + "\n" for line in part),
                        encoding="utf-8")
        print(f"wrote {path}: {len(part)} lines, "
              f"{sum(len(line.split()) for line in part)} words")


if __name__ == "__main__":
    main()
