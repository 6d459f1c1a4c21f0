"""The command line and row loop shared by the RC-beside-EOS tables over θ (kws_live, kws_word_end).

Each table reads several seeds' `firstspike evaluate` reports per mode and prints one markdown row per θ
that every report has; the scripts differ only in which points they read and which cells they print.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

Report = dict
PointsByTheta = Callable[[Report], dict]
Cells = Callable[[list[dict]], str]  # the seeds' points at one θ -> one mode's cells


def print_rc_eos_table(description: str, by_theta: PointsByTheta, cells: Cells,
                       intro: Callable[[list[Report], list[Report]], str], columns: list[str]) -> None:
    """Parse --rc/--eos report paths and print `intro`, then a table with `columns` per mode, one row per θ."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rc", nargs="+", required=True, help="reports of the rc runs")
    parser.add_argument("--eos", nargs="+", required=True, help="reports of the eos runs")
    args = parser.parse_args()
    rc, eos = ([json.loads(Path(p).read_text()) for p in paths] for paths in (args.rc, args.eos))
    thetas = sorted(set.intersection(*(set(by_theta(r)) for r in rc + eos)))
    header = [f"{mode} {column}" for mode in ("RC", "EOS") for column in columns]
    print(intro(rc, eos))
    print("| θ | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for theta in thetas:
        at = lambda reports: [by_theta(r)[theta] for r in reports]  # noqa: E731
        print(f"| {theta:g} | {cells(at(rc))} | {cells(at(eos))} |")
