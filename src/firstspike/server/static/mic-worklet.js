// AudioWorklet processor: microphone audio at the context's rate -> 16 kHz mono PCM16 chunks.
//
// Why here and not on the main thread: the worklet runs on the audio thread, so resampling never
// stalls on page work. The resampler is a windowed-sinc (Blackman) low-pass evaluated at each output
// instant, which filters out everything above the 8 kHz output Nyquist before decimating (plain
// sample dropping would alias). Its taps are precomputed per fractional phase (the rate ratio is
// rational, e.g. 44100/16000 = 441/160), so each output sample costs one short dot product.

const OUTPUT_RATE = 16000;
const MAX_PHASES = 1024;

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

function sinc(x) {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

/** Precomputed polyphase windowed-sinc taps for resampling inputRate -> outputRate. */
function designResampler(inputRate, outputRate) {
  const g = gcd(inputRate, outputRate);
  const step = inputRate / g; // input samples advanced per output sample, in units of 1/den
  const den = outputRate / g;
  const phases = Math.min(den, MAX_PHASES);
  // Pass band up to 7 kHz, stop band from 9 kHz (at 16 kHz out): speech detail survives and
  // anything that would fold below 7 kHz is suppressed by the window's ~74 dB side lobes.
  const nyquist = Math.min(inputRate, outputRate) / 2;
  const cutoff = (0.875 * nyquist) / inputRate; // cycles per input sample
  const transition = (0.25 * nyquist) / inputRate;
  const halfWidth = Math.max(2, Math.ceil(5.5 / transition / 2)); // Blackman: width ~ 5.5 / taps
  const taps = 2 * halfWidth;
  const table = new Float32Array(phases * taps);
  for (let p = 0; p < phases; p++) {
    const frac = p / phases;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      // Tap j weighs input sample (base - halfWidth + 1 + j) for output instant base + frac.
      const tau = halfWidth - 1 - j + frac;
      const w = 0.42 + 0.5 * Math.cos((Math.PI * tau) / halfWidth) + 0.08 * Math.cos((2 * Math.PI * tau) / halfWidth);
      const h = Math.abs(tau) < halfWidth ? 2 * cutoff * sinc(2 * cutoff * tau) * w : 0;
      table[p * taps + j] = h;
      sum += h;
    }
    for (let j = 0; j < taps; j++) table[p * taps + j] /= sum; // unity gain at DC
  }
  return { step, den, phases, taps, halfWidth, table };
}

class MicResampler extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.chunkSamples = opts.chunkSamples || 320; // 20 ms at 16 kHz
    this.design = designResampler(sampleRate, OUTPUT_RATE);
    const { taps } = this.design;
    // History of input samples; index 0 holds absolute input sample `historyStart`.
    this.history = new Float32Array(taps + 4096);
    this.historyLength = 0;
    this.historyStart = 0;
    // Next output instant = base + frac/den input samples. Starting at base = halfWidth - 1
    // means the first output needs no samples before the stream began.
    this.base = this.design.halfWidth - 1;
    this.frac = 0;
    this.chunk = new Int16Array(this.chunkSamples);
    this.chunkFill = 0;
    this.sumSquares = 0;
    this.peak = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data === "stop") this.running = false;
    };
  }

  append(samples) {
    const needed = this.historyLength + samples.length;
    if (needed > this.history.length) {
      const grown = new Float32Array(Math.max(needed, 2 * this.history.length));
      grown.set(this.history.subarray(0, this.historyLength));
      this.history = grown;
    }
    this.history.set(samples, this.historyLength);
    this.historyLength += samples.length;
  }

  emit(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.chunk[this.chunkFill++] = clipped < 0 ? Math.round(clipped * 32768) : Math.round(clipped * 32767);
    this.sumSquares += clipped * clipped;
    this.peak = Math.max(this.peak, Math.abs(clipped));
    if (this.chunkFill === this.chunkSamples) {
      const pcm = this.chunk.buffer;
      this.port.postMessage(
        { pcm, rms: Math.sqrt(this.sumSquares / this.chunkSamples), peak: this.peak },
        [pcm],
      );
      this.chunk = new Int16Array(this.chunkSamples);
      this.chunkFill = 0;
      this.sumSquares = 0;
      this.peak = 0;
    }
  }

  resample() {
    const { step, den, phases, taps, halfWidth, table } = this.design;
    const history = this.history;
    // Output at instant base+frac needs inputs base-halfWidth+1 ... base+halfWidth.
    while (this.base + halfWidth < this.historyStart + this.historyLength) {
      const first = this.base - halfWidth + 1 - this.historyStart;
      const phase = phases === den ? this.frac : Math.min(phases - 1, Math.round((this.frac * phases) / den));
      const offset = phase * taps;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += table[offset + j] * history[first + j];
      this.emit(acc);
      this.frac += step;
      this.base += Math.floor(this.frac / den);
      this.frac %= den;
    }
    // Drop history no future output will read.
    const keepFrom = this.base - halfWidth + 1 - this.historyStart;
    if (keepFrom > 0) {
      const kept = Math.max(0, this.historyLength - keepFrom);
      history.copyWithin(0, keepFrom, keepFrom + kept);
      this.historyLength = kept;
      this.historyStart += keepFrom;
    }
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0 && input[0].length > 0) {
      let mono = input[0];
      if (input.length > 1) {
        mono = new Float32Array(input[0].length);
        for (const channel of input) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / input.length;
      }
      this.append(mono);
      this.resample();
    }
    return this.running;
  }
}

registerProcessor("mic-resampler", MicResampler);
