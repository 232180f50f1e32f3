#!/usr/bin/env python3
"""Duty texts shaped like the 三定 of many jurisdictions, for timing similar_pairs.

Usage: jurisdiction_corpus.py CLAUSE_WORDS_CSV COUNT JURISDICTIONS [SEED] > org_duty.csv

CLAUSE_WORDS_CSV: one column with a header, each row one clause as its words
separated by spaces, e.g. from a generated data directory:

    bianzhi run --format csv - <<< "SELECT array_to_string(zh_tokens(duty_text,
      'word'), ' ') FROM (SELECT DISTINCT duty_text FROM org_duty) ORDER BY 1"

Why: real duty clauses come in families. A province's template clause is
copied into the 三定 of every city and district with local edits, so a text
has look-alikes in the other jurisdictions, and otherwise shares mostly
common words (负责, 全市, 管理 …) with the rest. Recombining whole clause
halves (the other similar_pairs corpus) makes every half recur in a fixed
share of all texts, so partners per text grow with N; here they grow with
the number of jurisdictions, and the pairs with N.

Shape, deterministic from SEED (default 7):
- Word frequencies and clause lengths (in words) are those of the input.
- ceil(COUNT / JURISDICTIONS) families; a family is a clause length drawn
  from the input's lengths, filled with words drawn by their frequency
  (a unigram model of the clauses), with a ，after the middle word when it
  has 8 words or more, ended by 。.
- Every family gets one variant per jurisdiction. Jurisdiction 0 writes 全市
  and the others 全区 where the family has either. Each variant, on its own
  draw: with probability 1/2 one word is replaced by a word drawn by
  frequency (a local wording); with 3/10 one word is dropped; with 1/5 two
  neighbouring words change places.
- Department kinds: 20 consecutive families make one kind; a jurisdiction's
  department of that kind is its org_id (jurisdiction × kinds + kind + 1),
  so 'partition_by => org_id' compares the 20 clauses of one department.

Output: the CSV `bianzhi import org_duty` takes (duty_id, org_id,
version_year, seq, duty_text, valid_from), rows by jurisdiction then family,
COUNT rows in all.
"""

import bisect
import collections
import csv
import itertools
import math
import random
import sys

CLAUSES_PER_KIND = 20
PLACE_WORDS = ("全市", "全区")


def read_clauses(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    return [row[0].split() for row in rows if row and row[0].split()]


class WordModel:
    """Words drawn by their frequency in the clauses."""

    def __init__(self, clauses):
        counts = collections.Counter(word for clause in clauses for word in clause)
        self.words = sorted(counts)
        self.cumulative = list(itertools.accumulate(counts[word] for word in self.words))
        self.lengths = sorted(len(clause) for clause in clauses)

    def word(self, rng):
        return self.words[bisect.bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]

    def family(self, rng):
        length = self.lengths[rng.randrange(len(self.lengths))]
        return [self.word(rng) for _ in range(length)]


def variant(family, jurisdiction, model, rng):
    words = list(family)
    if rng.random() < 0.5:
        words[rng.randrange(len(words))] = model.word(rng)
    if rng.random() < 0.3 and len(words) > 2:
        del words[rng.randrange(len(words))]
    if rng.random() < 0.2 and len(words) > 1:
        at = rng.randrange(len(words) - 1)
        words[at], words[at + 1] = words[at + 1], words[at]
    place = PLACE_WORDS[0] if jurisdiction == 0 else PLACE_WORDS[1]
    words = [place if word in PLACE_WORDS else word for word in words]
    if len(words) >= 8:
        middle = len(words) // 2
        return "".join(words[:middle]) + "，" + "".join(words[middle:]) + "。"
    return "".join(words) + "。"


def main(argv):
    if len(argv) not in (4, 5):
        sys.exit(__doc__.split("\n\n")[1])
    clauses = read_clauses(argv[1])
    count, jurisdictions = int(argv[2]), int(argv[3])
    seed = int(argv[4]) if len(argv) == 5 else 7
    if not clauses or count < 1 or jurisdictions < 1:
        sys.exit("need at least one clause, COUNT >= 1 and JURISDICTIONS >= 1")
    model = WordModel(clauses)
    rng = random.Random(seed)
    family_count = math.ceil(count / jurisdictions)
    families = [model.family(rng) for _ in range(family_count)]
    kinds = math.ceil(family_count / CLAUSES_PER_KIND)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["duty_id", "org_id", "version_year", "seq", "duty_text", "valid_from"])
    duty_id = 0
    for jurisdiction in range(jurisdictions):
        for index, family in enumerate(families):
            if duty_id == count:
                return
            duty_id += 1
            kind, seq = divmod(index, CLAUSES_PER_KIND)
            org_id = jurisdiction * kinds + kind + 1
            text = variant(family, jurisdiction, model, rng)
            out.writerow([duty_id, org_id, 2024, seq + 1, text, "2024-01-01"])


if __name__ == "__main__":
    main(sys.argv)
