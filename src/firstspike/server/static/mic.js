// The microphone: getUserMedia -> AudioWorklet (mic-worklet.js) -> 16 kHz PCM16 chunks.

const CHUNK_SAMPLES = 320; // 20 ms at 16 kHz: small chunks keep decision latency low

/** An error whose message is already fit to show to the user. */
export class MicError extends Error {}

/** Turn a getUserMedia/AudioContext failure into a sentence a user can act on. */
export function describeMicError(err) {
  switch (err && err.name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return "Microphone access was denied. Allow this site to use the microphone (the icon in the address bar) and press Start again.";
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Connect one and press Start again.";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "The microphone could not be started; another application may be using it.";
    default:
      return `The microphone could not be opened: ${err && err.message ? err.message : err}`;
  }
}

/**
 * Open the microphone and call `onChunk({pcm, rms, peak})` for every 20 ms of 16 kHz PCM16.
 * Resolves to an object with `stop()` and the capture `sampleRate`; rejects with a MicError.
 */
export async function openMicrophone(onChunk) {
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new MicError(
      "The microphone is only available on a secure page: open this page over https:// (or on http://localhost).",
    );
  }
  if (typeof AudioWorkletNode === "undefined") {
    throw new MicError("This browser lacks AudioWorklet support; use a current Chrome, Edge, Firefox or Safari.");
  }
  // Created before the permission prompt, while the click's user activation is fresh: some browsers
  // (Safari) only let an AudioContext start inside the gesture that asked for it.
  const context = new AudioContext({ latencyHint: "interactive" });
  context.resume().catch(() => {});
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      video: false,
    });
  } catch (err) {
    context.close().catch(() => {});
    throw new MicError(describeMicError(err));
  }
  try {
    await context.audioWorklet.addModule(new URL("mic-worklet.js", import.meta.url));
    const source = context.createMediaStreamSource(stream);
    const node = new AudioWorkletNode(context, "mic-resampler", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { chunkSamples: CHUNK_SAMPLES },
    });
    node.port.onmessage = (event) => onChunk(event.data);
    source.connect(node);
    if (context.state === "suspended") await context.resume();
    return {
      sampleRate: context.sampleRate,
      stop() {
        node.port.onmessage = null;
        node.port.postMessage("stop");
        source.disconnect();
        stream.getTracks().forEach((track) => track.stop());
        context.close().catch(() => {});
      },
    };
  } catch (err) {
    stream.getTracks().forEach((track) => track.stop());
    context.close().catch(() => {});
    throw new MicError(`The audio pipeline could not start: ${err && err.message ? err.message : err}`);
  }
}
