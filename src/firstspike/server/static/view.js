// Everything the page shows: status, errors, level meter, score bars, the decision and its history.
// Kept apart from the streaming logic so app.js reads as the conversation with the server.

const HISTORY_LENGTH = 8;
const $ = (id) => document.getElementById(id);

function formatMs(ms) {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

export class View {
  constructor() {
    this.startButton = $("start");
    this.stopButton = $("stop");
    this.againBox = $("again");
    this.bars = new Map();
    this.history = [];
  }

  // -- controls and messages ---------------------------------------------------------------
  setStreaming(streaming) {
    // Keep keyboard focus on a usable button: the one just pressed is about to be disabled.
    const hadFocus = document.activeElement === (streaming ? this.startButton : this.stopButton);
    this.startButton.disabled = streaming;
    this.stopButton.disabled = !streaming;
    if (hadFocus) (streaming ? this.stopButton : this.startButton).focus();
    document.body.classList.toggle("streaming", streaming);
  }

  status(text) {
    $("status").textContent = text;
  }

  error(text) {
    const alert = $("alert");
    alert.textContent = text;
    alert.hidden = !text;
  }

  endpoint(url) {
    $("endpoint").textContent = url.replace(/([?&]token=)[^&]*/, "$1…");
  }

  // -- level meter ---------------------------------------------------------------------------
  level(rms, peak) {
    const db = (x) => (x > 0 ? Math.max(-60, 20 * Math.log10(x)) : -60);
    const rmsDb = db(rms);
    const meter = $("level");
    meter.style.setProperty("--level", `${((rmsDb + 60) / 60) * 100}%`);
    meter.style.setProperty("--peak", `${((db(peak) + 60) / 60) * 100}%`);
    meter.setAttribute("aria-valuenow", rmsDb.toFixed(0));
    meter.setAttribute("aria-valuetext", rmsDb <= -60 ? "silent" : `${rmsDb.toFixed(0)} dB`);
    $("level-value").textContent = rmsDb <= -60 ? "–∞ dB" : `${rmsDb.toFixed(0)} dB`;
  }

  // -- scores --------------------------------------------------------------------------------
  /** Build one bar per label, in the model's order, with the threshold marked on firing labels. */
  labels(labels, firingLabels, threshold, modelName) {
    const list = $("scores");
    list.replaceChildren();
    this.bars.clear();
    for (const label of labels) {
      const item = document.createElement("li");
      const fires = firingLabels.has(label);
      item.className = fires ? "score" : "score filler";
      item.dataset.label = label;
      const name = document.createElement("span");
      name.className = "score-label";
      name.id = `score-label-${label}`;
      name.textContent = label;
      const meter = document.createElement("div");
      meter.className = "meter score-meter";
      meter.setAttribute("role", "meter");
      meter.setAttribute("aria-labelledby", name.id);
      meter.setAttribute("aria-valuemin", "0");
      meter.setAttribute("aria-valuemax", "1");
      meter.setAttribute("aria-valuenow", "0");
      meter.style.setProperty("--threshold-at", `${threshold * 100}%`);
      meter.innerHTML = `<div class="fill"></div>${fires ? '<div class="threshold" title="threshold"></div>' : ""}`;
      const value = document.createElement("span");
      value.className = "score-value";
      value.textContent = "0.00";
      item.append(name, meter, value);
      list.append(item);
      this.bars.set(label, { item, meter, value });
    }
    $("scores-empty").hidden = labels.length > 0;
    $("model").textContent = `Model: ${modelName} · threshold ${threshold}`;
  }

  scores(audioMs, scores) {
    $("audio-time").textContent = `${(audioMs / 1000).toFixed(2)} s`;
    let best = null;
    for (const [label, prob] of Object.entries(scores)) {
      const bar = this.bars.get(label);
      if (!bar) continue;
      bar.meter.style.setProperty("--score", `${Math.max(0, Math.min(1, prob)) * 100}%`);
      bar.meter.setAttribute("aria-valuenow", prob.toFixed(2));
      bar.value.textContent = prob.toFixed(2);
      if (best === null || prob > scores[best]) best = label;
    }
    for (const [label, bar] of this.bars) bar.item.classList.toggle("leading", label === best);
  }

  // -- decision ------------------------------------------------------------------------------
  clearDecision() {
    const decision = $("decision");
    decision.textContent = "Decision: …";
    decision.dataset.state = "listening";
    for (const id of ["fired-at", "latency", "score", "kind"]) $(id).textContent = "—";
    for (const bar of this.bars.values()) bar.item.classList.remove("decided");
  }

  decision({ label, audioMs, latencyMs, latencyNote, score, early, noCommand = false, lateKind = "at Stop" }) {
    const decision = $("decision");
    decision.textContent = noCommand ? `Decision: no command (best guess ${label})` : `Decision: ${label}`;
    decision.dataset.state = early ? "early" : "late";
    $("fired-at").textContent = `${formatMs(audioMs)} of audio`;
    $("latency").textContent = latencyMs === null ? "—" : `${latencyMs.toFixed(1)} ms${latencyNote ? ` ${latencyNote}` : ""}`;
    $("score").textContent = typeof score === "number" ? score.toFixed(3) : "—";
    $("kind").textContent = early ? "early" : lateKind;
    const bar = noCommand ? null : this.bars.get(label);
    if (bar) {
      bar.item.classList.add("decided");
      if (typeof score === "number") this.scores(audioMs, { [label]: score });
    }
    const kind = early ? "" : ` · ${lateKind}`;
    this.history.unshift({ label: noCommand ? `no command (${label}?)` : label, audioMs, latencyMs, kind });
    this.history.length = Math.min(this.history.length, HISTORY_LENGTH);
    const list = $("history");
    list.replaceChildren(
      ...this.history.map((entry) => {
        const item = document.createElement("li");
        const latency = entry.latencyMs === null ? "" : ` · ${entry.latencyMs.toFixed(1)} ms latency`;
        item.innerHTML = `<strong></strong> <span class="muted"></span>`;
        item.firstChild.textContent = entry.label;
        item.lastChild.textContent = `at ${formatMs(entry.audioMs)}${latency}${entry.kind}`;
        return item;
      }),
    );
  }

  noDecision() {
    const decision = $("decision");
    if (decision.dataset.state === "listening") {
      decision.textContent = "Decision: —";
      decision.dataset.state = "idle";
    }
  }
}
