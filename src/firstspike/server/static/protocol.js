// Protocol v1 of /v1/stream, as the page speaks it (mirrors src/firstspike/protocol.py).

export const STREAM_PATH = "v1/stream";
export const SAMPLE_RATE = 16000;

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  UNSUPPORTED: 1003,
  ABNORMAL: 1006, // never sent by a server: the browser reports it when the connection failed or dropped
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  OVERLOADED: 1013,
  PROTOCOL: 4000,
  TIMEOUT: 4008,
});

/**
 * The websocket address, derived from the page's own address so the page works behind any host,
 * port, TLS terminator or path prefix: https pages use wss://, and `?token=` is passed through.
 */
export function streamUrl(pageLocation) {
  const url = new URL(STREAM_PATH, pageLocation.href);
  url.protocol = pageLocation.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  const token = new URLSearchParams(pageLocation.search).get("token");
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

// As `firstspike listen` (protocol.py): the server ends the stream once speech is followed by this much
// quiet, and an answer it gives then counts as a command only from this score (docs/client.md).
export const DEFAULT_ENDPOINT_MS = 300;
export const ENDPOINT_MS_RANGE = [10, 10000];
export const ENDPOINT_MIN_SCORE = 0.8;

/**
 * The first message of a stream: 16 kHz mono PCM16 with partial scores, ended by the server once the
 * speech is over; `?model=`, `?threshold=` and `?endpoint_ms=` pass through.
 */
export function startMessage(pageLocation) {
  const params = new URLSearchParams(pageLocation.search);
  const message = { type: "start", sample_rate: SAMPLE_RATE, encoding: "pcm_s16le", channels: 1, partials: true };
  const model = params.get("model");
  if (model) message.model = model;
  const threshold = Number.parseFloat(params.get("threshold") ?? "");
  if (Number.isFinite(threshold)) message.threshold = threshold;
  const quietMs = endpointMs(pageLocation);
  if (quietMs !== null) message.endpoint_ms = quietMs;
  return JSON.stringify(message);
}

/** `?endpoint_ms=N`: the quiet after speech that ends the stream (default 300); `0` turns it off (null). */
export function endpointMs(pageLocation) {
  const text = new URLSearchParams(pageLocation.search).get("endpoint_ms");
  const value = Number.parseFloat(text ?? "");
  if (value === 0) return null;
  const [low, high] = ENDPOINT_MS_RANGE;
  return Number.isFinite(value) && value >= low && value <= high ? value : DEFAULT_ENDPOINT_MS;
}

/** `?endpoint_min_score=P`: a late answer after the speech ended counts as a command only from this score. */
export function endpointMinScore(pageLocation) {
  const value = Number.parseFloat(new URLSearchParams(pageLocation.search).get("endpoint_min_score") ?? "");
  return Number.isFinite(value) && value >= 0 && value <= 1 ? value : ENDPOINT_MIN_SCORE;
}

/**
 * A sentence for a stream that ended without a decision, built from the close code, the server's
 * error message (if it sent one) and whether the server had accepted the stream.
 */
export function describeFailure({ code, serverError, accepted }) {
  const detail = serverError ? ` The server said: “${serverError.message}” (${serverError.code}).` : "";
  switch (code) {
    case CLOSE.UNSUPPORTED:
      return `The server refused the stream: it does not accept this audio format or request.${detail}`;
    case CLOSE.POLICY:
      return `The server refused the stream: not authorised or not allowed by its policy. If it needs an API key, open this page with ?token=YOUR_KEY.${detail}`;
    case CLOSE.OVERLOADED:
      return `The server refused the stream because it is overloaded. Try again in a moment.${detail}`;
    case CLOSE.TOO_BIG:
      return `The server closed the stream: a message was too big.${detail}`;
    case CLOSE.INTERNAL:
      return `The server hit an internal error and closed the stream. Try again.${detail}`;
    case CLOSE.PROTOCOL:
      return `The server closed the stream because of a protocol error.${detail}`;
    case CLOSE.TIMEOUT:
      return `The server closed the stream: it ran too long or went idle.${detail}`;
    case CLOSE.GOING_AWAY:
      return `The server is shutting down and closed the stream. Try again shortly.${detail}`;
    case CLOSE.ABNORMAL:
      return accepted
        ? `The connection to the server was lost.${detail}`
        : `The server refused the connection or is unavailable (it may be full, need an API key, or be restarting). Try again later.${detail}`;
    default:
      return serverError
        ? `The server refused the stream.${detail}`
        : `The stream ended without a decision (close code ${code}).`;
  }
}
