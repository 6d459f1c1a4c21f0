"""The browser page at `/`, run in real headless chromium against a real `firstspike serve`.

The microphone is chromium's fake capture device playing a keyword WAV (looped), so the whole path is
real: getUserMedia, the AudioWorklet resampler, protocol v1 over the websocket, the server's decision.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.browser

DECISION_WAIT_MS = 8000  # the sample is 1 s and loops, so the model has heard the word several times by then
SAMPLES = Path(__file__).resolve().parents[2] / "samples"  # held-out voices, see samples/README.md


def page_errors(page) -> list[str]:
    """Collect uncaught page exceptions, so a broken script fails the test loudly.

    Console errors are not collected: chromium logs a refused websocket upgrade there, which is expected.
    """
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    return errors


def open_page(context, url: str):
    page = context.new_page()
    errors = page_errors(page)
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page, errors


@pytest.mark.parametrize("word", ["yes"])
def test_page_shows_the_decision_for_a_spoken_keyword(word, open_server, launch_browser, artifacts):
    wav = SAMPLES / f"{word}.wav"
    context = launch_browser(wav)
    page, errors = open_page(context, open_server.url)

    start, stop = page.get_by_role("button", name="Start"), page.get_by_role("button", name="Stop")
    assert start.is_enabled() and stop.is_disabled()
    # The meter falls back to silent when the stream ends, which on a loaded machine can come before a
    # poll sees it move: remember whether it ever showed a level.
    page.evaluate("""() => {
        const meter = document.getElementById('level');
        window.levelSeen = false;
        new MutationObserver(() => {
            if (Number(meter.getAttribute('aria-valuenow')) > -60) window.levelSeen = true;
        }).observe(meter, {attributes: true, attributeFilter: ['aria-valuenow']});
    }""")
    start.click()

    # The server accepted the stream: one bar per label from the `ready` message, and audio is flowing.
    page.wait_for_selector("#scores li.score")
    labels = page.eval_on_selector_all("#scores li.score", "items => items.map(item => item.dataset.label)")
    assert word in labels, f"the model's labels {labels} lack the keyword {word!r}"
    page.wait_for_function("window.levelSeen === true")
    page.wait_for_function("document.getElementById('audio-time').textContent !== '0.00 s'")
    page.screenshot(path=str(artifacts / f"streaming-{word}.png"), full_page=True)

    # The bundled model must fire on the word by itself, before anyone presses Stop.
    page.wait_for_function("document.getElementById('decision').dataset.state === 'early'", timeout=DECISION_WAIT_MS)
    page.screenshot(path=str(artifacts / f"decision-{word}.png"), full_page=True)

    decision = page.inner_text("#decision")
    assert decision == f"Decision: {word}"
    assert re.fullmatch(r"\d+ ms of audio|\d+\.\d\d s of audio", page.inner_text("#fired-at"))
    assert re.fullmatch(r"\d+\.\d ms( after Stop)?", page.inner_text("#latency"))
    assert start.is_enabled() and stop.is_disabled(), "after a decision the page must offer Start again"
    assert page.is_hidden("#alert")
    assert not errors, errors


def test_page_answers_once_the_speech_is_over(open_server, launch_browser, artifacts, tmp_path):
    """`?endpoint_ms=`: with θ = 1 nothing can fire, yet the server ends the stream with its best guess once
    a sound is followed by 300 ms of quiet, and the page shows it as no command since its score is below
    `?endpoint_min_score=1`.
    The fake microphone loops 0.5 s of faint noise, a 0.3 s tone 30 dB above it
    and 0.7 s of the noise again, so that the detector, not the sample's signal-to-noise ratio, is tested."""
    rate = 16000
    rng = np.random.default_rng(0)
    noise = lambda seconds: 10 ** (-50 / 20) * rng.standard_normal(int(seconds * rate))  # noqa: E731
    tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(int(0.3 * rate)) / rate) + noise(0.3)
    wav = tmp_path / "tone.wav"
    sf.write(str(wav), np.concatenate([noise(0.5), tone, noise(0.7)]).astype(np.float32), rate, subtype="PCM_16")
    context = launch_browser(wav)
    page, errors = open_page(context, f"{open_server.url}?threshold=1&endpoint_ms=300&endpoint_min_score=1")
    page.get_by_role("button", name="Start").click()
    page.wait_for_function("document.getElementById('decision').dataset.state === 'late'", timeout=DECISION_WAIT_MS)
    page.screenshot(path=str(artifacts / "decision-endpoint.png"), full_page=True)
    # a late answer below `endpoint_min_score` is shown as no command (the model guesses "go" at about 0.87)
    assert re.fullmatch(r"Decision: no command \(best guess \w+\)", page.inner_text("#decision"))
    assert re.fullmatch(r"\d+\.\d ms after the speech ended", page.inner_text("#latency"))
    assert page.inner_text("#kind") == "speech ended"
    assert re.fullmatch(r"\d+ ms of audio|\d+\.\d\d s of audio", page.inner_text("#fired-at"))
    assert page.get_by_role("button", name="Start").is_enabled()
    assert not errors, errors


def wait_for_alert(page) -> str:
    alert = page.get_by_role("alert")
    alert.wait_for(state="visible", timeout=10000)
    return alert.inner_text()


def test_page_says_the_server_refused_the_stream(strict_server, launch_browser, artifacts):
    """Refused at the HTTP upgrade (401 → the browser sees 1006), refused as overloaded (1013), then accepted."""
    from websockets.sync.client import connect

    key = strict_server.env["FIRSTSPIKE_API_KEYS"]
    context = launch_browser(SAMPLES / "yes.wav")
    page, errors = open_page(context, strict_server.url)
    start = page.get_by_role("button", name="Start")

    start.click()
    assert "server refused the connection or is unavailable" in wait_for_alert(page)
    assert page.inner_text("#decision") == "Decision: —"
    assert start.is_enabled(), "a refused stream must let the user try again"
    page.screenshot(path=str(artifacts / "refused.png"), full_page=True)

    page.goto(f"{strict_server.url}?token={key}")
    page.wait_for_selector("body[data-ready=true]")
    with connect(f"{strict_server.stream_url}?token={key}") as occupant:  # takes the server's only slot
        occupant.send(json.dumps({"type": "start", "sample_rate": 16000, "encoding": "pcm_s16le", "channels": 1}))
        assert json.loads(occupant.recv(timeout=5))["type"] == "ready"
        start.click()
        message = wait_for_alert(page)
        assert "refused the stream because it is overloaded" in message
        assert "(overloaded)" in message, "the server's own error message is quoted"
        page.screenshot(path=str(artifacts / "overloaded.png"), full_page=True)

    # The slot frees once the server has seen the occupant go; then ?token= rides along and the stream
    # is accepted, and Stop gets a decision. Retrying on "overloaded" is what the page tells a user to do.
    for _ in range(20):
        start.click()
        page.wait_for_function("document.querySelector('#scores li.score') || !document.getElementById('alert').hidden")
        if page.is_hidden("#alert"):
            break
        assert "overloaded" in page.inner_text("#alert")
        page.wait_for_timeout(250)
    page.wait_for_selector("#scores li.score")
    assert page.is_hidden("#alert"), "a new stream clears the old error"
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function("['early','late'].includes(document.getElementById('decision').dataset.state)")
    assert page.inner_text("#decision").startswith("Decision: ")
    assert not errors, errors


def test_page_says_the_microphone_was_denied(open_server, launch_browser):
    context = launch_browser(SAMPLES / "yes.wav", grant_microphone=False)  # headless chromium denies the prompt
    page, errors = open_page(context, open_server.url)
    page.get_by_role("button", name="Start").click()
    assert wait_for_alert(page).startswith("Microphone access was denied.")
    assert page.get_by_role("button", name="Start").is_enabled()
    assert not errors, errors


def test_page_says_the_microphone_is_missing(open_server, launch_browser):
    context = launch_browser(None)  # no fake device: only the machine's own microphones
    page, errors = open_page(context, open_server.url)
    inputs = page.evaluate(
        "async () => (await navigator.mediaDevices.enumerateDevices()).filter(d => d.kind === 'audioinput').length"
    )
    if inputs:
        pytest.skip("this machine has a microphone, so 'missing' cannot be shown")
    page.get_by_role("button", name="Start").click()
    assert wait_for_alert(page).startswith("No microphone was found.")
    assert not errors, errors


@pytest.mark.parametrize("context_rate", [48000, 44100])
def test_worklet_resamples_to_16k_without_aliasing(context_rate, open_server, launch_browser):
    """A 1 kHz tone passes at full level; a 12 kHz tone, which would alias to 4 kHz, is filtered out."""
    context = launch_browser(None)
    page, errors = open_page(context, open_server.url)
    measure = """async ([rate, frequency]) => {
        const seconds = 1;
        const ctx = new OfflineAudioContext(1, rate * seconds, rate);
        await ctx.audioWorklet.addModule("mic-worklet.js");
        const tone = new OscillatorNode(ctx, { frequency });
        const node = new AudioWorkletNode(ctx, "mic-resampler", { numberOfOutputs: 0, processorOptions: { chunkSamples: 320 } });
        const chunks = [];
        node.port.onmessage = (event) => chunks.push(new Int16Array(event.data.pcm));
        tone.connect(node);
        tone.start();
        await ctx.startRendering();
        await new Promise((resolve) => setTimeout(resolve, 300));
        const samples = chunks.flatMap((chunk) => Array.from(chunk));
        const middle = samples.slice(1000, samples.length - 1000).map((s) => s / 32768);
        const rms = Math.sqrt(middle.reduce((sum, x) => sum + x * x, 0) / middle.length);
        return { count: samples.length, rms };
    }"""
    passband = page.evaluate(measure, [context_rate, 1000])
    alias = page.evaluate(measure, [context_rate, 12000])
    # One second in, one second out, less the filter's half-width and an unfinished 20 ms chunk.
    assert 16000 - 2 * 320 <= passband["count"] <= 16000
    assert passband["rms"] == pytest.approx(2**-0.5, rel=0.06)  # within 0.5 dB
    attenuation_db = 20 * math.log10(passband["rms"] / max(alias["rms"], 1e-9))
    assert attenuation_db > 50, f"12 kHz leaks through at only {attenuation_db:.1f} dB down"
    assert not errors, errors


def test_page_modules_derive_the_address_messages_and_latency(open_server, launch_browser):
    """protocol.js and latency.js, run in the browser: wss behind TLS, path prefixes, ?token=, chunk lookup."""
    context = launch_browser(None)
    page, errors = open_page(context, open_server.url)
    result = page.evaluate(
        """async () => {
        const { streamUrl, startMessage, describeFailure, endpointMs, endpointMinScore } = await import("./protocol.js");
        const { ChunkLog } = await import("./latency.js");
        const at = (href) => { const u = new URL(href); return { href: u.href, protocol: u.protocol, search: u.search }; };
        const log = new ChunkLog(16000);
        [0, 20, 40].forEach((t) => log.record(320, t));
        return {
          local: streamUrl(at("http://localhost:8000/")),
          tls: streamUrl(at("https://kws.example.org/demo/?token=s3cret&model=m#x")),
          start: JSON.parse(startMessage(at("http://localhost:8000/?model=m&threshold=0.8"))),
          startWithoutEndpoint: JSON.parse(startMessage(at("http://localhost:8000/?endpoint_ms=0"))),
          latencies: [log.latencyMs(20, 100), log.latencyMs(21, 100), log.latencyMs(60, 100), log.latencyMs(61, 100)],
          refused: describeFailure({ code: 1006, serverError: null, accepted: false }),
          lost: describeFailure({ code: 1006, serverError: null, accepted: true }),
          policy: describeFailure({ code: 1008, serverError: { code: "origin_not_allowed", message: "no" }, accepted: false }),
          endpoint: [endpointMs(at("http://h/?endpoint_ms=450")), endpointMs(at("http://h/")),
                     endpointMs(at("http://h/?endpoint_ms=-3")), endpointMs(at("http://h/?endpoint_ms=0")),
                     endpointMinScore(at("http://h/?endpoint_min_score=0.6")),
                     endpointMinScore(at("http://h/")), endpointMinScore(at("http://h/?endpoint_min_score=7"))],
        };
    }"""
    )
    assert result["local"] == "ws://localhost:8000/v1/stream"
    assert result["tls"] == "wss://kws.example.org/demo/v1/stream?token=s3cret"
    assert result["start"] == {
        "type": "start", "sample_rate": 16000, "encoding": "pcm_s16le", "channels": 1, "partials": True,
        "model": "m", "threshold": 0.8, "endpoint_ms": 300,
    }
    assert "endpoint_ms" not in result["startWithoutEndpoint"]
    # 20 ms chunks sent at t = 0, 20, 40 ms; a decision at t = 100 ms: the frame ending at 20 ms rode the first.
    assert result["latencies"] == [100, 80, 60, None]
    assert "refused" in result["refused"] and "lost" in result["lost"]
    assert "refused" in result["policy"] and "origin_not_allowed" in result["policy"]
    assert result["endpoint"] == [450, 300, 300, None, 0.6, 0.8, 0.8]
    assert not errors, errors
