"""Keyword vocabularies and the task mapping (sc12, sc35).

Mapping happens when a corpus is opened, never in the manifest, so one corpus serves every task.
"""

from __future__ import annotations

SC35_WORDS: tuple[str, ...] = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "backward", "forward", "follow", "learn", "visual",
)
SC12_COMMANDS: tuple[str, ...] = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
FILLERS: tuple[str, str] = ("_silence_", "_unknown_")
SILENCE, UNKNOWN = FILLERS
TASKS: tuple[str, ...] = ("sc12", "sc35")


def _task_words(task: str) -> tuple[str, ...]:
    if task == "sc12":
        return SC12_COMMANDS
    if task == "sc35":
        return SC35_WORDS
    raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def task_labels(task: str) -> tuple[list[str], list[str]]:
    """Return (labels, firing_labels): the task's words, then `_silence_`, `_unknown_`.

    Only the words fire; fillers are decided when a stream ends, so silence never closes a stream.
    """
    words = list(_task_words(task))
    return words + list(FILLERS), words


def map_label(word_or_label: str, task: str) -> str:
    """Map a spoken word (or an already mapped label) to the task's label.

    Fillers stay as they are; words outside the task's vocabulary (other Speech Commands words or any
    other speech) become `_unknown_`. Case and surrounding spaces are ignored.
    """
    words = _task_words(task)
    if not isinstance(word_or_label, str) or not word_or_label.strip():
        raise ValueError(f"cannot map an empty word to a {task} label (use '{SILENCE}' for silence)")
    if word_or_label in FILLERS:
        return word_or_label
    word = word_or_label.strip().lower()
    return word if word in words else UNKNOWN
