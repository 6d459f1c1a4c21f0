"""The `_unknown_` vocabulary: ordinary English words, with hard negatives picked out.

Hard negatives share the start or the sound of a keyword (yesterday, download, leftover,
stopper, gopher, theft, weight...). A model that decides early is most tempted exactly by these, so
they get a large share of the unknown examples. Plain plurals of a keyword ("dogs", "stops") are
left out: they contain the whole keyword, and nothing in a 1 s clip separates them from it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firstspike.model.labels import SC35_WORDS

DICTIONARY = Path("/usr/share/dict/words")
DICTIONARY_PACKAGE = "wamerican"

# Words that sound like a keyword without sharing its spelling, plus the classic confusions.
CURATED_HARD_NEGATIVES = (
    "yesterday", "yet", "yell", "yeah", "note", "know", "nope", "upper", "uphill", "download", "downtown",
    "leftover", "lift", "write", "writer", "rite", "onto", "own", "office", "often", "stopper", "step",
    "gopher", "goal", "ago", "hero", "zebra", "won", "when", "to", "too", "tooth", "free", "three",
    "for", "fore", "fire", "fight", "sticks", "sex", "heaven", "ate", "eighty", "wait", "nice", "line",
    "bad", "bid", "heard", "burn", "cut", "cap", "dock", "dug", "hippy", "mouse", "how", "marvel",
    "marlin", "shelter", "tea", "treat", "vow", "wound", "back", "ward", "fort", "fellow", "hollow",
    "turn", "earn", "vision", "virtual", "mission",
)


def dictionary_words(path: Path = DICTIONARY) -> list[str]:
    """Lowercase alphabetic 2–10 letter words, no keyword, no keyword plural."""
    if not path.is_file():
        raise FileNotFoundError(f"word list {path} not found; install it with: sudo apt-get install {DICTIONARY_PACKAGE}")
    keywords = set(SC35_WORDS)
    plurals = {k + "s" for k in keywords} | {k + "es" for k in keywords}
    words = set()
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        word = line.strip()
        if 2 <= len(word) <= 10 and word.isascii() and word.isalpha() and word.islower():
            if word not in keywords and word not in plurals:
                words.add(word)
    return sorted(words)


def hard_negatives_for(keyword: str, words: list[str]) -> list[str]:
    """Dictionary words that start with the keyword, share its first letters, or end like it."""
    prefix = keyword[: 3 if len(keyword) >= 4 else 2]
    rhyme = keyword[-3:] if len(keyword) >= 4 else None
    found = [w for w in words if w.startswith(keyword)]
    found += [w for w in words if w.startswith(prefix) and not w.startswith(keyword)]
    if rhyme:
        found += [w for w in words if w.endswith(rhyme) and abs(len(w) - len(keyword)) <= 2]
    return list(dict.fromkeys(found))


def build_vocabulary(general: int, hard_per_keyword: int, seed: int) -> tuple[list[str], list[str]]:
    """(general unknown words, hard negatives), disjoint and deterministic by seed."""
    words = dictionary_words()
    rng = np.random.default_rng([seed, 1])
    hard: list[str] = [w for w in CURATED_HARD_NEGATIVES if w not in SC35_WORDS]
    for keyword in SC35_WORDS:
        candidates = [w for w in hard_negatives_for(keyword, words) if w not in hard]
        # Words that start with the keyword are the hardest: up to half the keyword's share.
        starts = [w for w in candidates if w.startswith(keyword)]
        rest = [w for w in candidates if not w.startswith(keyword)]
        take = list(rng.choice(starts, min(hard_per_keyword // 2, len(starts)), replace=False)) if starts else []
        room = hard_per_keyword - len(take)
        take += list(rng.choice(rest, min(room, len(rest)), replace=False)) if rest and room > 0 else []
        hard += [str(w) for w in take]
    hard = list(dict.fromkeys(w for w in hard if w not in SC35_WORDS))
    pool = [w for w in words if w not in set(hard)]
    general_words = [str(w) for w in rng.choice(pool, min(general, len(pool)), replace=False)]
    return sorted(general_words), sorted(hard)
