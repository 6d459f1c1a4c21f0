"""Shared by the end-of-speech benches: a checkpoint's live view of one corpus split.

`split_tails` loads the checkpoint, opens the corpus under the checkpoint's task, and runs every
single-word keyword and `_unknown_` clip of the split, followed by 1 s of its own background, through
the model (`firstspike.model.live.live_tail_probabilities`).
"""

from __future__ import annotations

from firstspike.model.checkpoint import load_checkpoint
from firstspike.model.data.audio import load_wav
from firstspike.model.data.corpus import open_corpus
from firstspike.model.evaluate import LIVE_TAIL_S, default_cache_dir, load_features
from firstspike.model.live import live_tail_probabilities


def split_tails(checkpoint: str, corpus_dir: str, split: str):
    """(model, checkpoint dict, (features, probabilities, keyword mask, firing mask)) for `split`."""
    model, ckpt = load_checkpoint(checkpoint, map_location="cpu")
    corpus = open_corpus(corpus_dir, task=ckpt["train_summary"].get("task", "sc12"))
    rows = load_features(corpus, split, model.frontend, default_cache_dir(corpus_dir), load_wav).rows
    tails = live_tail_probabilities(model, rows, model.config.labels, model.config.firing_labels, LIVE_TAIL_S,
                                    load_wav)
    if tails is None:
        raise SystemExit(f"no single-word keyword clips in the {split} split")
    return model, ckpt, tails
