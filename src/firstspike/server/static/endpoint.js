// End of speech, as `firstspike listen --endpoint-ms` detects it (src/firstspike/client/endpoint.py):
// 10 ms frames more than 10 dB above a noise floor count as speech (at least 60 ms of them), and the
// utterance is over after `quietMs` without speech. The floor follows the quietest 50 ms stretches: it
// starts from the first 50 ms of signal, drops at once and rises 0.05 dB a frame. Frames of digital
// silence (a device that has just started) are no signal: they neither set the floor nor count as
// speech. Keep the two in step.

const FRAME_SAMPLES = 160; // 10 ms at 16 kHz
const FLOOR_RISE_DB = 0.05;
const FLOOR_FRAMES = 5;
const NO_SIGNAL_ENERGY = 1e-9; // below -90 dBFS

export class Endpointer {
  constructor(quietMs, marginDb = 10, minSpeechMs = 60) {
    this.quietFrames = Math.ceil(quietMs / 10);
    this.minSpeechFrames = Math.max(1, Math.ceil(minSpeechMs / 10));
    this.marginDb = marginDb;
    this.floorDb = null;
    this.speechFrames = 0;
    this.quietRun = 0;
    this.recent = [];
  }

  /** PCM16 samples (an Int16Array, whole 10 ms frames) as they are sent; true once the speech is over. */
  push(samples) {
    for (let start = 0; start + FRAME_SAMPLES <= samples.length; start += FRAME_SAMPLES) {
      let sum = 0;
      for (let i = start; i < start + FRAME_SAMPLES; i++) sum += (samples[i] / 32768) ** 2;
      if (this.frame(sum / FRAME_SAMPLES)) return true;
    }
    return false;
  }

  get heardSpeech() {
    return this.speechFrames >= this.minSpeechFrames;
  }

  frame(energy) {
    if (energy < NO_SIGNAL_ENERGY) {
      if (this.heardSpeech) this.quietRun += 1;
      return this.heardSpeech && this.quietRun >= this.quietFrames;
    }
    this.recent.push(energy);
    if (this.recent.length > FLOOR_FRAMES) this.recent.shift();
    if (this.floorDb === null && this.recent.length < FLOOR_FRAMES) return false;
    const recent = 10 * Math.log10(this.recent.reduce((a, b) => a + b, 0) / this.recent.length);
    this.floorDb = this.floorDb === null ? recent : Math.min(recent, this.floorDb + FLOOR_RISE_DB);
    if (10 * Math.log10(energy) > this.floorDb + this.marginDb) {
      this.speechFrames += 1;
      this.quietRun = 0;
    } else if (this.heardSpeech) {
      this.quietRun += 1;
    }
    return this.heardSpeech && this.quietRun >= this.quietFrames;
  }
}
