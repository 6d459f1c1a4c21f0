"""Reproduction of the rank-coding paper's toy problems and temporally-coded digits, RC against EOS.

`tasks` generates the data, `run` trains and evaluates through firstspike's own model and rank-coding code,
`report` turns saved results into the tables and plots of docs/reproduction.md.
"""
