#!/usr/bin/env bash
# Every run behind docs/reproduction.md, in order, one process at a time (15–30 minutes on the shared 2-core machine, one torch thread).
# Results land in bench/repro/results/; then `python -m bench.repro.report` rebuilds the tables and plots.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
run() { "$PY" -m bench.repro.run "$@" --no-progress; }
run noise --mode rc eos --seeds 0 1 2
run seq5 --mode rc eos --seeds 0 1 2
run digits --bins 20 --mode rc eos --seeds 0 1 2
run digits --bins 4 --mode rc eos --seeds 0 1 2
run noise --mode rc --beta 0.05 0.1 0.2 0.3 0.5 --seeds 0 1 2
run digits --bins 4 --mode rc --beta 0.1 0.3 --seeds 0 1 2
# step-1 decisions need a lower θ and a longer run: RC only trains a step once something spikes there
run digits --bins 4 --mode rc --theta 0.8 --epochs 120 --seeds 0 1 2 --tag theta0.8-epochs120
run digits --bins 20 --mode rc --theta 0.8 --epochs 120 --seeds 0 1 2 --tag theta0.8-epochs120
"$PY" -m bench.repro.step1_bound --bins 4 20 --theta 0.95   # ceiling on step-1 accuracy (printed, quoted in the doc)
"$PY" -m bench.repro.step1_bound --bins 4 20 --theta 0.8
run noise --mode rc --examples 512000 --seeds 0 --tag examples512000
"$PY" -m bench.repro.report
