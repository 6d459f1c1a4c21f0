"""Turn bench/repro/results/*.json into the tables and plots of docs/reproduction.md.

    python -m bench.repro.report [--results DIR] [--doc docs/reproduction.md] [--img docs/img/repro]

Runs that differ only in their seed are pooled: tables show the mean ± standard deviation over seeds.
The generated tables replace everything between the `<!-- results:begin -->` and `<!-- results:end -->`
markers of the document, so the hand-written text around them stays put.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench.repro.run import RESULTS_DIR

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
RELEASED_NOISE = {"rc": "~95% at mean spike step ~12–13/40", "eos": "96.9% last step; 96.4% first crossing; 7.3% never spike"}


# --- loading and pooling -----------------------------------------------------------------------------


def group_key(config: dict) -> tuple:
    """Everything that defines a setting except the seed (and where it ran)."""
    size = config["epochs"] if config["task"] == "digits" else config["examples"]
    source = "mnist" if config.get("mnist_dir") else ("sklearn" if config["task"] == "digits" else "")
    bins = config["bins"] if config["task"] == "digits" else None
    return (config["task"], source, bins, config["mode"], config["beta"], config["theta"], config["hidden"], size)


def load_groups(results: Path) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for path in sorted(results.glob("*.json")):
        run = json.loads(path.read_text())
        groups[group_key(run["config"])].append(run)
    for runs in groups.values():
        runs.sort(key=lambda r: r["config"]["seed"])
    return dict(groups)


def pooled(runs: list[dict], getter) -> tuple[float, float]:
    values = np.array([getter(r) for r in runs], dtype=float)
    return float(values.mean()), float(values.std())


def fmt(runs: list[dict], getter, pct: bool = False, digits: int = 1) -> str:
    mean, std = pooled(runs, getter)
    scale, unit = (100.0, "%") if pct else (1.0, "")
    if len(runs) == 1:
        return f"{mean * scale:.{digits}f}{unit}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}{unit}"


def seeds_of(runs: list[dict]) -> str:
    return ",".join(str(r["config"]["seed"]) for r in runs)


def at(key: str):
    return lambda r: r["eval"]["at_theta"][key]


def ev(key: str):
    return lambda r: r["eval"][key]


def tr(key: str):
    return lambda r: r["train"][key]


def select(groups: dict, task: str, mode: str | None = None, beta: float | None = 0.0, **where) -> list[tuple]:
    """Group keys of one task (optionally one mode / β / bins), in a stable order."""
    names = ("task", "source", "bins", "mode", "beta", "theta", "hidden", "size")
    keys = []
    for key in groups:
        k = dict(zip(names, key))
        if k["task"] != task or (mode and k["mode"] != mode) or (beta is not None and k["beta"] != beta):
            continue
        if any(k[n] != v for n, v in where.items()):
            continue
        keys.append(key)
    return sorted(keys, key=lambda k: tuple("" if v is None else v for v in k))


def describe(key: tuple) -> str:
    task, source, bins, mode, beta, theta, hidden, size = key
    unit = "epochs" if task == "digits" else "examples"
    extra = f"{source} {bins} bins, " if task == "digits" else ""
    return f"{extra}{hidden} hidden, {size:,} {unit}, θ={theta:g}, β={beta:g}"


# --- tables ------------------------------------------------------------------------------------------


def noise_tables(groups: dict) -> list[str]:
    lines = ["### Noise vs signal", "",
             "| mode | setting | seeds | first-spike acc | mean spike step /40 | never spiked | last-step acc | released code |",
             "|---|---|---|---|---|---|---|---|"]
    keys = select(groups, "noise")
    for key in keys:
        runs = groups[key]
        lines.append(f"| {key[3].upper()} | {describe(key)} | {seeds_of(runs)} | {fmt(runs, at('accuracy'), True)} | "
                     f"{fmt(runs, at('mean_spike_step'))} | {fmt(runs, at('never_spiked'), True)} | "
                     f"{fmt(runs, ev('accuracy_last_step'), True)} | {RELEASED_NOISE[key[3]]} |")
    if keys:
        lines += ["", "Accuracy and mean spike step by noise level (noise std bands; mean over seeds):", "",
                  "| noise std | n | " + " | ".join(f"{k[3].upper()} acc | {k[3].upper()} step" for k in keys) + " |",
                  "|---|---|" + "---|---|" * len(keys)]
        bands = groups[keys[0]][0]["eval"]["at_theta"]["by_noise"]
        for i, band in enumerate(bands):
            cells = []
            for key in keys:
                runs = groups[key]
                cells.append(fmt(runs, lambda r: r["eval"]["at_theta"]["by_noise"][i]["accuracy"], True))
                cells.append(fmt(runs, lambda r: r["eval"]["at_theta"]["by_noise"][i]["mean_spike_step"]))
            lo, hi = band["noise_std"]
            lines.append(f"| {lo:.2f}–{hi:.2f} | {band['n']} | " + " | ".join(cells) + " |")
    return lines + [""]


def seq5_tables(groups: dict) -> list[str]:
    lines = ["### Sequence of 5", "",
             "| mode | setting | seeds | first-spike acc | mean spike step /25 | never spiked | last-step acc | "
             "positives: acc | positives: spike − ideal step | positives: spiked before ideal | negatives: acc | "
             "negatives: spike step (answer certain at) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in select(groups, "seq5"):
        runs = groups[key]
        p = lambda name: (lambda r: r["eval"]["at_theta"]["positives"][name])  # noqa: E731
        n = lambda name: (lambda r: r["eval"]["at_theta"]["negatives"][name])  # noqa: E731
        lines.append(
            f"| {key[3].upper()} | {describe(key)} | {seeds_of(runs)} | {fmt(runs, at('accuracy'), True)} | "
            f"{fmt(runs, at('mean_spike_step'))} | {fmt(runs, at('never_spiked'), True)} | "
            f"{fmt(runs, ev('accuracy_last_step'), True)} | {fmt(runs, p('accuracy'), True)} | "
            f"{fmt(runs, p('mean_lag'), digits=2)} | {fmt(runs, p('share_before_ideal'), True)} | "
            f"{fmt(runs, n('accuracy'), True)} | {fmt(runs, n('mean_spike_step'))} "
            f"({fmt(runs, n('mean_certain_step'))}) |")
    return lines + [""]


def digits_tables(groups: dict) -> list[str]:
    lines = ["### Temporally-coded digits", "",
             "| mode | setting | seeds | acc after step 1 | first-spike acc | mean spike step | decided at step 1 | "
             "never spiked | best acc at any fixed step | last-step acc |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for key in select(groups, "digits", beta=None):
        runs = groups[key]
        lines.append(
            f"| {key[3].upper()} | {describe(key)} | {seeds_of(runs)} | {fmt(runs, ev('accuracy_step1'), True)} | "
            f"{fmt(runs, at('accuracy'), True)} | {fmt(runs, at('mean_spike_step'), digits=2)} /{key[2]} | "
            f"{fmt(runs, at('decided_at_step1'), True)} | {fmt(runs, at('never_spiked'), True)} | "
            f"{fmt(runs, ev('accuracy_best_step'), True)} | {fmt(runs, ev('accuracy_last_step'), True)} |")
    return lines + [""]


def compute_table(groups: dict) -> list[str]:
    lines = ["### Training compute, RC against EOS", "",
             "Frames = sequence steps pushed through the LSTM during training (EOS: every step of every sequence). "
             "Wall time is the whole training loop on this machine (shared CPU, 1 torch thread).", "",
             "| task | mode | setting | seeds | frames computed | share of EOS frames | training wall time (s) | "
             "RC chunk |", "|---|---|---|---|---|---|---|---|"]
    for task in ("noise", "seq5", "digits"):
        for key in select(groups, task):
            runs = groups[key]
            lines.append(f"| {task} | {key[3].upper()} | {describe(key)} | {seeds_of(runs)} | "
                         f"{fmt(runs, tr('train_frames_computed'), digits=0)} | "
                         f"{fmt(runs, tr('train_frame_fraction'), True)} | {fmt(runs, tr('train_wall_s'))} | "
                         f"{runs[0]['train']['train_chunk']} |")
    return lines + [""]


def sweep_keys(groups: dict) -> list[tuple]:
    """RC noise settings of the β sweep: those sharing the training budget that most settings use."""
    keys = select(groups, "noise", mode="rc", beta=None)
    if not keys:
        return []
    sizes = [k[7] for k in keys]
    common = max(set(sizes), key=sizes.count)
    return [k for k in keys if k[7] == common]


def beta_table(groups: dict) -> list[str]:
    keys = sweep_keys(groups)
    if len({k[4] for k in keys}) < 2:
        return []
    lines = ["### β sweep (noise vs signal, RC)", "",
             "| β | seeds | first-spike acc | mean spike step /40 | never spiked | last-step acc |",
             "|---|---|---|---|---|---|"]
    for key in sorted(keys, key=lambda k: k[4]):
        runs = groups[key]
        lines.append(f"| {key[4]:g} | {seeds_of(runs)} | {fmt(runs, at('accuracy'), True)} | "
                     f"{fmt(runs, at('mean_spike_step'))} | {fmt(runs, at('never_spiked'), True)} | "
                     f"{fmt(runs, ev('accuracy_last_step'), True)} |")
    return lines + [""]


# --- plots -------------------------------------------------------------------------------------------


def _mean_curve(runs: list[dict], getter) -> np.ndarray:
    return np.mean([np.asarray(getter(r), dtype=float) for r in runs], axis=0)


def plot_all(groups: dict, img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    written = []
    colours = {"rc": "tab:blue", "eos": "tab:orange"}

    keys = select(groups, "noise")
    if keys:
        budget = sweep_keys(groups)[0][7] if sweep_keys(groups) else keys[0][7]
        keys = [k for k in keys if k[7] == budget]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
        for key in keys:
            runs = groups[key]
            bands = runs[0]["eval"]["at_theta"]["by_noise"]
            centres = [np.mean(b["noise_std"]) for b in bands]
            acc = [pooled(runs, lambda r, i=i: r["eval"]["at_theta"]["by_noise"][i]["accuracy"])[0] for i in range(len(bands))]
            step = [pooled(runs, lambda r, i=i: r["eval"]["at_theta"]["by_noise"][i]["mean_spike_step"])[0] for i in range(len(bands))]
            a1.plot(centres, np.array(acc) * 100, "o-", color=colours[key[3]], label=key[3].upper())
            a2.plot(centres, step, "o-", color=colours[key[3]], label=key[3].upper())
        a1.set(xlabel="noise std", ylabel="first-spike accuracy (%)", title="Accuracy by noise level")
        a2.set(xlabel="noise std", ylabel="mean spike step (of 40)", title="Decision time by noise level")
        for a in (a1, a2):
            a.grid(alpha=0.3)
            a.legend()
        fig.tight_layout()
        fig.savefig(img / "noise_by_level.png", dpi=110)
        plt.close(fig)
        written.append("noise_by_level.png")

        rc = select(groups, "noise", mode="rc")
        if rc:
            fig, ax = plt.subplots(figsize=(5.5, 3.5))
            for key in rc:
                hist = _mean_curve(groups[key], tr("train_mean_spike_step_history"))
                ax.plot(np.linspace(0, key[7], len(hist)), hist, label=f"{key[7]:,} examples, seeds {seeds_of(groups[key])}")
            ax.legend(fontsize=8)
            ax.set(xlabel="training examples", ylabel="mean t* in training batches", ylim=(0, 41),
                   title="RC learns to decide earlier (noise vs signal)")
            ax.grid(alpha=0.3)
            fig.tight_layout()
            fig.savefig(img / "noise_rc_training_spike_step.png", dpi=110)
            plt.close(fig)
            written.append("noise_rc_training_spike_step.png")

    keys = select(groups, "seq5")
    if keys:
        fig, ax = plt.subplots(figsize=(5.5, 4))
        ideal_steps = None
        for key in keys:
            runs = groups[key]
            rows = runs[0]["eval"]["at_theta"]["positives"]["by_ideal_step"]
            ideal_steps = [row["ideal_step"] for row in rows]
            mean = [np.mean([r["eval"]["at_theta"]["positives"]["by_ideal_step"][i]["mean_spike_step"] for r in runs])
                    for i in range(len(rows))]
            ax.plot(ideal_steps, mean, "o-", color=colours[key[3]], label=key[3].upper())
        ax.plot(ideal_steps, ideal_steps, "k--", label="ideal")
        ax.set(xlabel="ideal step (end of first run of 5)", ylabel="mean spike step (positives)",
               title="Sequence of 5: spike timing")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(img / "seq5_spike_vs_ideal.png", dpi=110)
        plt.close(fig)
        written.append("seq5_spike_vs_ideal.png")

    for bins in sorted({k[2] for k in select(groups, "digits")}):
        keys = select(groups, "digits", bins=bins, source="sklearn")
        if not keys:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 4))
        seen: dict[str, int] = defaultdict(int)
        for key in keys:
            runs = groups[key]
            mode = key[3]
            # several settings of one mode (θ, epochs): tell them apart by line style and label
            style = ("-", "--", ":", "-.")[seen[mode] % 4]
            seen[mode] += 1
            name = f"{mode.upper()} θ={key[5]:g}, {key[7]} ep" + (f", β={key[4]:g}" if key[4] else "")
            curve = _mean_curve(runs, ev("accuracy_by_step")) * 100
            ax.plot(np.arange(1, len(curve) + 1), curve, "o" + style, ms=3, color=colours[mode],
                    label=f"{name}: argmax at fixed step")
            acc, _ = pooled(runs, at("accuracy"))
            step, _ = pooled(runs, at("mean_spike_step"))
            ax.plot([step], [acc * 100], "*" if style == "-" else "P", ms=12, color=colours[mode],
                    label=f"{name}: first spike (mean step)")
        ax.set(xlabel="time step", ylabel="test accuracy (%)", title=f"8×8 digits, {bins} latency bins", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        name = f"digits_bins{bins}_accuracy_by_step.png"
        fig.savefig(img / name, dpi=110)
        plt.close(fig)
        written.append(name)

    rc_keys = sweep_keys(groups)
    eos_keys = select(groups, "noise", mode="eos")
    if len({k[4] for k in rc_keys}) >= 2:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        pts = []
        for key in sorted(rc_keys, key=lambda k: k[4]):
            runs = groups[key]
            pts.append((pooled(runs, at("mean_spike_step"))[0], pooled(runs, at("accuracy"))[0] * 100, key[4]))
        xs, ys, betas = zip(*pts)
        ax.plot(xs, ys, "o-", color=colours["rc"], label="RC, θ=0.95, β sweep")
        for x, y, b in pts:
            ax.annotate(f"β={b:g}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=8)
        sweeps = [(k, "s--", colours["eos"], "EOS") for k in eos_keys]
        sweeps += [(k, "^:", colours["rc"], "RC β=0") for k in rc_keys if k[4] == 0]
        for key, style, colour, label in sweeps:
            if key[7] != rc_keys[0][7]:  # compare like with like: the same training budget
                continue
            runs = groups[key]
            n = len(runs[0]["eval"]["theta_sweep"])
            sx = [np.mean([r["eval"]["theta_sweep"][i]["mean_spike_step"] for r in runs]) for i in range(n)]
            sy = [np.mean([r["eval"]["theta_sweep"][i]["accuracy"] for r in runs]) * 100 for i in range(n)]
            ax.plot(sx, sy, style, color=colour, alpha=0.8, label=f"{label}, read out at θ ∈ {{0.8 … 0.999}}")
        ax.set(xlabel="mean spike step (of 40)", ylabel="first-spike accuracy (%)",
               title="Speed/accuracy trade-off, noise vs signal")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(img / "noise_beta_tradeoff.png", dpi=110)
        plt.close(fig)
        written.append("noise_beta_tradeoff.png")
    return written


# --- document ----------------------------------------------------------------------------------------


def results_markdown(groups: dict, plots: list[str], img_rel: str) -> str:
    lines = [BEGIN, "", "<!-- generated by `python -m bench.repro.report`; edit the text outside these markers -->", ""]
    lines += noise_tables(groups) + seq5_tables(groups) + digits_tables(groups) + beta_table(groups)
    lines += compute_table(groups)
    if plots:
        lines += ["### Plots", ""] + [f"![{p}]({img_rel}/{p})" for p in plots] + [""]
    lines.append(END)
    return "\n".join(lines)


def update_document(doc: Path, block: str) -> None:
    text = doc.read_text() if doc.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + block + "\n"
    doc.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.repro.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "reproduction.md")
    parser.add_argument("--img", type=Path, default=ROOT / "docs" / "img" / "repro")
    parser.add_argument("--print", action="store_true", help="print the tables instead of updating the document")
    args = parser.parse_args(argv)
    groups = load_groups(args.results)
    if not groups:
        print(f"error: no results in {args.results}; run `python -m bench.repro.run TASK` first", file=sys.stderr)
        return 2
    if args.print:
        print(results_markdown(groups, [], ""))
        return 0
    plots = plot_all(groups, args.img)
    try:
        img_rel = str(args.img.resolve().relative_to(args.doc.resolve().parent))
    except ValueError:
        img_rel = str(args.img.resolve())
    update_document(args.doc, results_markdown(groups, plots, img_rel))
    print(f"updated {args.doc} ({len(groups)} settings) and {len(plots)} plots in {args.img}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
