"""Keyword corpora: synthetic TTS corpora built here, and Speech Commands v0.02 from a local folder.

`corpus.open_corpus(path, task)` is the one entry point for training; `audio.load_wav` reads the
files; `synth.build_corpus` (the `firstspike data synth` command) builds a synthetic corpus.
"""
