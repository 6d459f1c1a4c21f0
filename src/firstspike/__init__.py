"""Firstspike: real-time keyword spotting with rank-coded (first-spike) recurrent networks."""

__version__ = "0.1.0"
