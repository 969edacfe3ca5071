"""Write ``topic_sample.csv`` and ``topic_valid.csv``: the built-in data of
the topic app.

Short news-style headlines from a small grammar, written for nlpseq, in four
classes: sport, politics, technology, food. Some words are shared between
topics ("the team", "a new", "wins"), so a model has to read more than one
word. Deterministic: ``python make_topic_sample.py`` rewrites the same files
(400 training rows, 80 validation rows, balanced).
"""

import csv
import random
from pathlib import Path

SUBJECTS = {
    "sport": ["the home team", "the captain", "the young striker",
              "the national side", "the coach", "the champion",
              "the goalkeeper", "the runner"],
    "politics": ["the minister", "the government", "the senate",
                 "the opposition leader", "the mayor", "parliament",
                 "the president", "the party"],
    "technology": ["the startup", "the chip maker", "the new phone",
                   "the software team", "the app", "the robot",
                   "the search engine", "the cloud service"],
    "food": ["the chef", "the new bakery", "the restaurant", "the market",
             "the cafe", "the food critic", "the pizza place",
             "the street kitchen"],
}
ACTIONS = {
    "sport": ["wins the final", "scores twice", "loses the match",
              "breaks the record", "signs a new contract", "trains for the "
              "cup", "misses a penalty", "takes the title"],
    "politics": ["wins the vote", "passes a new law", "loses the election",
                 "announces tax cuts", "signs a new treaty", "calls for "
                 "reform", "faces a budget fight", "takes office"],
    "technology": ["launches a faster processor", "releases an update",
                   "loses market share", "breaks a speed record",
                   "signs a new cloud deal", "raises funding", "ships a "
                   "smarter chip", "fixes a security bug"],
    "food": ["wins a cooking award", "opens a new menu", "loses its star",
             "bakes a record cake", "signs a new supplier", "serves "
             "seasonal soup", "adds vegan dishes", "raises prices for bread"],
}
ENDINGS = ["", " today", " after a long week", " this season",
           " despite critics", " in the capital"]


def rows(rng, per_class):
    out = []
    for topic in SUBJECTS:
        for _ in range(per_class):
            text = (f"{rng.choice(SUBJECTS[topic])} "
                    f"{rng.choice(ACTIONS[topic])}{rng.choice(ENDINGS)}")
            out.append((text[0].upper() + text[1:], topic))
    rng.shuffle(out)
    return out


def write(path, data):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(data)


if __name__ == "__main__":
    here = Path(__file__).parent
    rng = random.Random(7)
    write(here / "topic_sample.csv", rows(rng, 100))
    write(here / "topic_valid.csv", rows(rng, 20))
