"""`bench/mel_power_layouts.py`: every variant it times computes the same mel energy."""

from __future__ import annotations

import numpy as np

from bench import mel_power_layouts


def test_every_variant_gives_the_filtered_power_of_each_bin():
    groups, width, mels, batch = 3, 4, 5, 7
    rng = np.random.default_rng(1)
    mel = rng.random((groups * width, mels)).astype(np.float32)
    floor = np.full(mels, 1e-3, np.float32)
    spectrum = rng.standard_normal((groups, 2 * width, batch)).astype(np.float32)
    # Each group holds its bins' cos parts, then their sin parts: a bin's power is cos² + sin².
    power = (spectrum[:, :width] ** 2 + spectrum[:, width:] ** 2).reshape(groups * width, batch)
    expected = power.T @ mel + floor

    graphs = mel_power_layouts.build_graphs(groups, width, mel, floor)

    assert {"squared parts", "power, ReduceSum"} <= set(graphs)
    for name, model in graphs.items():
        energy = mel_power_layouts.open_session(model).run(None, {"spectrum": spectrum})[0]
        np.testing.assert_allclose(energy, expected, rtol=1e-5, atol=1e-5, err_msg=name)
