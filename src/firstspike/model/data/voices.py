"""The fixed table of TTS voices and their voice-disjoint split assignment.

Why fixed rather than drawn by seed: the held-out voices should stay the same across seeds and
presets, so results from different corpora are comparable. Speakers shared between engines
(Kevin Lenzo's `kal` in flite and festival, the `slt` speaker of flite and festival's HTS voice)
always land in the same split, and an espeak-ng variant (the speaker model: `m3`, `klatt`, ...) is
held out with every accent it is combined with.
"""

from __future__ import annotations

from dataclasses import dataclass

ESPEAK, FLITE, FESTIVAL = "espeak-ng", "flite", "festival"
SPLITS = ("train", "val", "test")

ESPEAK_ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)
# Natural-sounding variants only (no robots, whisper or novelty voices); order fixes the accent pairing.
ESPEAK_VARIANTS_BY_SPLIT: dict[str, tuple[str, ...]] = {
    "test": ("m3", "f2", "klatt3", "croak", "Andy", "belinda", "grandpa", "norbert"),
    "val": ("m6", "f4", "klatt4", "Annie", "john", "victor", "steph"),
    "train": (
        "m1", "m2", "m4", "m5", "m7", "m8", "f1", "f3", "f5", "klatt", "klatt2", "klatt6",
        "Alex", "Alicia", "Andrea", "Gene", "Lee", "Michael", "Mike", "adam", "aunty", "benjamin",
        "boris", "caleb", "david", "ed", "edward", "grandma", "iven", "linda", "max", "paul",
        "quincy", "rob", "robert", "travis", "zac", "shelby",
    ),
}
FLITE_VOICES_BY_SPLIT = {"train": ("kal", "kal16", "slt"), "val": ("awb",), "test": ("rms",)}
FESTIVAL_VOICES_BY_SPLIT = {"train": ("kal_diphone", "cmu_us_slt_arctic_hts"), "val": (), "test": ("ked_diphone",)}


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: `id` is what the manifest's `voice` column holds."""

    engine: str
    name: str  # what the engine is given: "en-us+m3", "slt", "ked_diphone"
    split: str

    @property
    def id(self) -> str:
        short = self.name.removesuffix("_diphone").replace("cmu_us_slt_arctic_hts", "slt_hts")
        return f"{self.engine}:{short}"

    @property
    def slug(self) -> str:
        """A file-system-safe name for cache folders."""
        return self.id.replace(":", "_").replace("+", "_")


def espeak_voices(variants_per_split: dict[str, tuple[str, ...]], accents_per_variant: int) -> list[Voice]:
    """Each variant paired with `accents_per_variant` accents, spread over the accent list."""
    voices, index = [], 0
    for split in SPLITS:
        for variant in variants_per_split.get(split, ()):
            for k in range(accents_per_variant):
                accent = ESPEAK_ACCENTS[(index + 3 * k) % len(ESPEAK_ACCENTS)]
                voices.append(Voice(ESPEAK, f"{accent}+{variant}", split))
            index += 1
    return voices


def voice_table(
    espeak_variants: dict[str, tuple[str, ...]] = ESPEAK_VARIANTS_BY_SPLIT,
    accents_per_variant: int = 2,
    flite: dict[str, tuple[str, ...]] = FLITE_VOICES_BY_SPLIT,
    festival: dict[str, tuple[str, ...]] = FESTIVAL_VOICES_BY_SPLIT,
) -> list[Voice]:
    voices = espeak_voices(espeak_variants, accents_per_variant)
    for engine, table in ((FLITE, flite), (FESTIVAL, festival)):
        voices += [Voice(engine, name, split) for split in SPLITS for name in table.get(split, ())]
    return voices
