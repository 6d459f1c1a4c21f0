// Client-side decision latency: the time from sending the chunk that holds the deciding frame to
// receiving the decision. The server reports where the deciding frame ends (`audio_ms`); this log
// maps that sample position back to the chunk that carried it and the moment it was sent.

export class ChunkLog {
  constructor(sampleRate) {
    this.sampleRate = sampleRate;
    this.samplesSent = 0;
    this.ends = []; // end sample (exclusive) of each chunk, increasing
    this.sentAt = []; // performance.now() when each chunk was handed to the socket
  }

  /** Record a chunk of `samples` samples sent at `now` (ms). */
  record(samples, now) {
    this.samplesSent += samples;
    this.ends.push(this.samplesSent);
    this.sentAt.push(now);
  }

  /** When the chunk holding sample position `audioMs` (the deciding frame's end) was sent, or null. */
  sentTimeFor(audioMs) {
    const lastSample = Math.max(1, Math.round((audioMs * this.sampleRate) / 1000)); // frame ends after this many samples
    // Binary search: the first chunk whose end reaches lastSample.
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid] < lastSample) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.ends.length ? this.sentAt[lo] : null;
  }

  /** Decision latency in ms, or null if the deciding frame lies beyond what was sent. */
  latencyMs(audioMs, receivedAt) {
    const sent = this.sentTimeFor(audioMs);
    return sent === null ? null : receivedAt - sent;
  }
}
