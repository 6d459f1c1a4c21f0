// The page's conversation with the server: microphone chunks out, scores and a decision back.
//
// One Stream object per press of Start: open the microphone, connect, send the start message,
// stream 20 ms PCM16 chunks once the server is ready, show partial scores, and end on the
// decision: a keyword crossing θ, the server's best guess once the speech is over (`endpoint_ms`
// in the start message), or Stop, which asks the server for its best guess so far.

import { ChunkLog } from "./latency.js";
import { MicError, openMicrophone } from "./mic.js";
import { SAMPLE_RATE, describeFailure, endpointMinScore, startMessage, streamUrl } from "./protocol.js";
import { View } from "./view.js";

const MAX_QUEUED_CHUNKS = 250; // 5 s of audio held while the server has not yet said "ready"
const AGAIN_DELAY_MS = 600;

class Stream {
  constructor(view, onEnd) {
    this.view = view;
    this.onEnd = onEnd;
    this.url = streamUrl(window.location);
    this.log = new ChunkLog(SAMPLE_RATE);
    this.queue = [];
    this.accepted = false;
    this.decided = false;
    this.stopping = false;
    this.ended = false;
    this.serverError = null;
    this.stopSentAt = null;
    this.firingLabels = new Set();
    this.frameMs = 0;
    this.minLateScore = endpointMinScore(window.location);
    this.mic = null;
    this.socket = null;
  }

  async begin() {
    this.view.status("Opening the microphone…");
    try {
      this.mic = await openMicrophone((chunk) => this.onChunk(chunk));
    } catch (err) {
      this.end(err instanceof MicError ? err.message : `The microphone could not be opened: ${err}`);
      return;
    }
    if (this.ended) {
      this.mic.stop();
      return;
    }
    this.view.status(`Connecting to the server (microphone at ${this.mic.sampleRate} Hz)…`);
    this.view.endpoint(this.url);
    try {
      this.socket = new WebSocket(this.url);
    } catch (err) {
      this.end(`The server address is not valid: ${err.message}`);
      return;
    }
    this.socket.binaryType = "arraybuffer";
    this.socket.onopen = () => this.socket.send(startMessage(window.location));
    this.socket.onmessage = (event) => this.onMessage(event);
    this.socket.onclose = (event) => this.onClose(event);
  }

  onChunk({ pcm, rms, peak }) {
    this.view.level(rms, peak);
    if (this.ended || this.stopping || this.decided) return;
    if (!this.accepted) {
      this.queue.push(pcm);
      if (this.queue.length > MAX_QUEUED_CHUNKS) this.queue.shift();
      return;
    }
    this.send(pcm);
  }

  send(pcm) {
    this.socket.send(pcm);
    this.log.record(pcm.byteLength / 2, performance.now());
  }

  onMessage(event) {
    const receivedAt = performance.now();
    if (typeof event.data !== "string") return;
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (message.type) {
      case "ready":
        this.accepted = true;
        this.firingLabels = new Set(message.firing_labels || []);
        this.frameMs = message.frame_ms || 0;
        this.view.labels(message.labels || [], this.firingLabels, message.threshold, message.model);
        this.view.status("Listening: say a keyword.");
        for (const pcm of this.queue.splice(0)) this.send(pcm);
        break;
      case "scores":
        this.view.scores(message.audio_ms, message.scores || {});
        break;
      case "decision":
        this.onDecision(message, receivedAt);
        break;
      case "error":
        this.serverError = { code: message.code, message: message.message };
        break;
      default:
        break;
    }
  }

  onDecision(message, receivedAt) {
    this.decided = true;
    const endpointed = message.endpointed === true;
    // at the end of speech the server pads the last 10 ms frame: it can end past the chunk that completed it
    const lastAudioMs = endpointed ? message.audio_ms - this.frameMs + 0.1 : message.audio_ms;
    let latencyMs = this.log.latencyMs(lastAudioMs, receivedAt);
    let latencyNote = "";
    if (endpointed) {
      latencyNote = "after the speech ended"; // from the chunk that completed the quiet
    } else if (!message.early && this.stopSentAt !== null) {
      // A decision asked for with Stop: its latency is the wait after Stop.
      latencyMs = receivedAt - this.stopSentAt;
      latencyNote = "after Stop";
    }
    // after the end of speech, a filler or a weak guess is no command (docs/web.md, ?endpoint_min_score=)
    const noCommand = endpointed && (!this.firingLabels.has(message.label) || !(message.score >= this.minLateScore));
    this.view.decision({
      label: message.label,
      audioMs: message.audio_ms,
      latencyMs,
      latencyNote,
      score: message.score,
      early: Boolean(message.early),
      noCommand,
      lateKind: endpointed ? "speech ended" : "at Stop",
    });
    this.releaseMic();
  }

  onClose(event) {
    if (this.decided) {
      this.end(null, "Done. Press Start to stream again.");
    } else if (this.stopping && (event.code === 1000 || this.serverError?.code === "no_audio")) {
      this.end(null, "Stopped before the server decided.");
    } else {
      this.end(describeFailure({ code: event.code, serverError: this.serverError, accepted: this.accepted }));
    }
  }

  /** Stop: ask the server for its decision on the audio so far (or just hang up if not yet streaming). */
  stop() {
    if (this.ended || this.stopping || this.decided) return;
    this.stopping = true;
    this.releaseMic();
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.accepted) {
      this.socket.send(JSON.stringify({ type: "stop" }));
      this.stopSentAt = performance.now();
      this.view.status("Stopped; waiting for the final decision…");
    } else {
      if (this.socket) this.socket.close(1000);
      this.end(null, "Stopped.");
    }
  }

  releaseMic() {
    if (this.mic) {
      this.mic.stop();
      this.mic = null;
    }
    this.view.level(0, 0);
  }

  end(errorText, statusText = "Press Start to stream again.") {
    if (this.ended) return;
    this.ended = true;
    this.releaseMic();
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000);
    if (errorText) {
      this.view.error(errorText);
      this.view.noDecision();
      this.view.status("Press Start to try again.");
    } else {
      this.view.status(statusText);
    }
    this.onEnd(this);
  }
}

function main() {
  const view = new View();
  let current = null;
  let againTimer = null;

  const start = () => {
    clearTimeout(againTimer);
    if (current) return;
    view.error("");
    view.clearDecision();
    view.setStreaming(true);
    current = new Stream(view, (ended) => {
      if (current !== ended) return;
      current = null;
      view.setStreaming(false);
      const pressedStop = ended.stopping;
      if (ended.decided && !pressedStop && view.againBox.checked) againTimer = setTimeout(start, AGAIN_DELAY_MS);
    });
    current.begin();
  };

  view.startButton.addEventListener("click", start);
  view.stopButton.addEventListener("click", () => {
    clearTimeout(againTimer);
    if (current) current.stop();
  });
  view.againBox.addEventListener("change", () => {
    if (!view.againBox.checked) clearTimeout(againTimer);
  });
  window.addEventListener("pagehide", () => current && current.end(null));
  view.endpoint(streamUrl(window.location));
  document.body.dataset.ready = "true"; // lets tests know the script has loaded
}

main();
