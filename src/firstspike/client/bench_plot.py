"""PNG of a benchmark: decision latency against open streams, and load, server CPU and the model
scheduler's busy share over time."""

from __future__ import annotations


def plot_bench(summary: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    rows = [r for r in summary["latency_by_streams"] if r.get("n")]
    if rows:
        x = [(r["streams_from"] + r["streams_to"]) / 2 for r in rows]
        for key, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
            left.plot(x, [r[key] for r in rows], style, label=key)
        left.legend()
    else:
        left.text(0.5, 0.5, "no decisions", ha="center", va="center", transform=left.transAxes)
    left.set_xlabel("open streams")
    left.set_ylabel("decision latency (ms)")
    left.set_title(f"latency vs streams (held {summary['streams_held']}/{summary['streams']})")
    left.grid(alpha=0.3)

    timeline = summary["timeline"]
    right.plot([p["t"] for p in timeline], [p["active_streams"] for p in timeline], color="tab:blue", label="open streams")
    right.set_xlabel("time (s)")
    right.set_ylabel("open streams", color="tab:blue")
    server = summary.get("server") or {}
    if server.get("timeline"):
        cpu_axis = right.twinx()
        cpu_axis.plot([r["t"] for r in server["timeline"]], [r["cpu_percent"] for r in server["timeline"]],
                      color="tab:red", alpha=0.7, label="server CPU %")
        busy = [(r["t"], 100.0 * r["scheduler_busy"]) for r in server["timeline"] if r.get("scheduler_busy") is not None]
        if busy:  # on the same % scale: near 100 a worker, the model is the bottleneck
            cpu_axis.plot(*zip(*busy), color="tab:green", alpha=0.7, label="model scheduler busy %")
            cpu_axis.legend(loc="lower right")
        cpu_axis.set_ylabel("server CPU % (of one core)" + (", scheduler busy %" if busy else ""), color="tab:red")
    right.set_title("load over time")
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
