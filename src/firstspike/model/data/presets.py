"""Corpus sizes: `tiny` for tests, `small` for quick experiments, `default` for real training."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from firstspike.model.labels import SC12_COMMANDS, SC35_WORDS
from firstspike.model.data.voices import (
    ESPEAK_VARIANTS_BY_SPLIT, FESTIVAL_VOICES_BY_SPLIT, FLITE_VOICES_BY_SPLIT, Voice, voice_table,
)


@dataclass(frozen=True)
class Preset:
    name: str
    keywords: tuple[str, ...]
    per_command: int  # examples of each sc12 command (clips + streams)
    per_other_word: int  # examples of each other Speech Commands word
    unknown: int  # examples of other words
    silence: int
    stream_share: float  # share of keyword examples rendered as long streams
    unknown_stream_share: float
    general_vocabulary: int  # dictionary words drawn for `_unknown_`
    hard_per_keyword: int  # hard negatives per keyword on top of the curated list
    hard_share: float  # share of unknown examples that are hard negatives
    prosodies: int  # rate/pitch settings per voice for the keywords
    voices_per_unknown_word: int
    accents_per_variant: int
    espeak_variants: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(ESPEAK_VARIANTS_BY_SPLIT))
    flite: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(FLITE_VOICES_BY_SPLIT))
    festival: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(FESTIVAL_VOICES_BY_SPLIT))
    split_shares: tuple[float, float, float] = (0.8, 0.1, 0.1)

    def voices(self) -> list[Voice]:
        return voice_table(self.espeak_variants, self.accents_per_variant, self.flite, self.festival)

    def examples_for(self, word: str) -> int:
        return self.per_command if word in SC12_COMMANDS else self.per_other_word

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny", keywords=("yes", "no", "stop", "marvin"), per_command=14, per_other_word=10,
        unknown=40, silence=16, stream_share=0.1, unknown_stream_share=0.1, general_vocabulary=30,
        hard_per_keyword=1, hard_share=0.4, prosodies=1, voices_per_unknown_word=1, accents_per_variant=1,
        espeak_variants={"train": ("m1", "f3"), "val": ("m6",), "test": ("m3",)},
        flite={"train": ("kal",), "val": ("awb",), "test": ("rms",)},
        festival={"test": ("ked_diphone",)},
    ),
    "small": Preset(
        name="small", keywords=SC35_WORDS, per_command=300, per_other_word=60, unknown=1500, silence=500,
        stream_share=0.1, unknown_stream_share=0.05, general_vocabulary=800, hard_per_keyword=10,
        hard_share=0.4, prosodies=1, voices_per_unknown_word=1, accents_per_variant=1,
    ),
    "default": Preset(
        name="default", keywords=SC35_WORDS, per_command=1700, per_other_word=360, unknown=7400, silence=2400,
        stream_share=0.1, unknown_stream_share=0.05, general_vocabulary=2500, hard_per_keyword=30,
        hard_share=0.4, prosodies=2, voices_per_unknown_word=2, accents_per_variant=2,
    ),
}
