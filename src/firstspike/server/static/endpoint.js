// End of speech, as `firstspike listen --endpoint-ms` detects it (src/firstspike/client/endpoint.py):
// 10 ms frames more than 12 dB above a noise floor count as speech (at least 60 ms of them), and the
// utterance is over after `quietMs` without speech. The floor follows the quietest 50 ms stretches: it
// drops at once and rises 0.05 dB a frame. Keep the two in step.

const FRAME_SAMPLES = 160; // 10 ms at 16 kHz
const FLOOR_RISE_DB = 0.05;
const FLOOR_FRAMES = 5;
const SILENT_DB = -100;

export class Endpointer {
  constructor(quietMs, marginDb = 12, minSpeechMs = 60) {
    this.quietFrames = Math.ceil(quietMs / 10);
    this.minSpeechFrames = Math.max(1, Math.ceil(minSpeechMs / 10));
    this.marginDb = marginDb;
    this.floorDb = null;
    this.speechFrames = 0;
    this.quietRun = 0;
    this.recent = [];
  }

  /** PCM16 samples (an Int16Array) as they are sent; true once the speech is over. */
  push(samples) {
    for (let start = 0; start + FRAME_SAMPLES <= samples.length; start += FRAME_SAMPLES) {
      let sum = 0;
      for (let i = start; i < start + FRAME_SAMPLES; i++) sum += (samples[i] / 32768) ** 2;
      const energy = Math.max(sum / FRAME_SAMPLES, 10 ** (SILENT_DB / 10));
      const level = 10 * Math.log10(energy);
      this.recent.push(energy);
      if (this.recent.length > FLOOR_FRAMES) this.recent.shift();
      const recent = 10 * Math.log10(this.recent.reduce((a, b) => a + b, 0) / this.recent.length);
      this.floorDb = this.floorDb === null ? recent : Math.min(recent, this.floorDb + FLOOR_RISE_DB);
      const heard = this.speechFrames >= this.minSpeechFrames;
      if (level > this.floorDb + this.marginDb) {
        this.speechFrames += 1;
        this.quietRun = 0;
      } else if (heard) {
        this.quietRun += 1;
      }
      if (this.speechFrames >= this.minSpeechFrames && this.quietRun >= this.quietFrames) return true;
    }
    return false;
  }
}
