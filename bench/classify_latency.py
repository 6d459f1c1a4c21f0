"""Time `/v1/classify`'s model work (`server.classify.classify_samples`) for step models side by side.

Each file is classified at its own θ and at θ = 1 (never fires: the whole clip is stepped), the
models taking turns call by call, and the median over the repeats is printed with the decision,
so it shows at once that the graphs agree.

    firstspike export models/default/checkpoint.pt -o /tmp/multi-hop.onnx --graph multi-hop
    .venv/bin/python bench/classify_latency.py src/firstspike/server/models/default.onnx /tmp/multi-hop.onnx
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import soundfile as sf

from firstspike.runtime import open_step_session
from firstspike.server.classify import classify_samples
from firstspike.server.models import LoadedModel

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+", help="step-model files to compare")
    parser.add_argument("--wav", type=Path, nargs="+", default=[SAMPLES / "yes.wav", SAMPLES / "stream-yes.wav"],
                        help="16 kHz clips to classify (default: the bundled samples)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)

    models = []
    for path in args.models:
        session, info = open_step_session(path)
        models.append(LoadedModel(path.name, path, session, info, info.threshold))
    print("| clip | θ | " + " | ".join(f"{m.name} ({m.info.extra.get('firstspike.graph', '?')})" for m in models) + " |")
    print("|---|---|" + "---:|" * len(models))
    for wav in args.wav:
        audio, rate = sf.read(wav, dtype="float32")
        if rate != models[0].info.sample_rate:
            print(f"{wav} is at {rate} Hz; the models want {models[0].info.sample_rate} Hz", file=sys.stderr)
            return 2
        for theta in (None, 1.0):
            taken: list[list[float]] = [[] for _ in models]
            results = [None] * len(models)
            for _ in range(args.repeats):
                for index, model in enumerate(models):
                    began = time.perf_counter()
                    results[index] = classify_samples(model, audio, model.threshold if theta is None else theta, False)
                    taken[index].append(time.perf_counter() - began)
            cells = [f"{1000 * statistics.median(t):.2f} ms → {r['label']} @ frame {r['frame']}"
                     for t, r in zip(taken, results)]
            print(f"| {wav.name} ({len(audio) / rate:.2f} s) | {'model' if theta is None else theta} | "
                  + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
