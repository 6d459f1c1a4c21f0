"""Admission by load: the stream cap is the number of streams that would keep the scheduler at max_load."""

from __future__ import annotations

import pytest

from firstspike.server.admission import MIN_CAP, LoadAdmission


def _settled(admission: LoadAdmission, streams: int, load: float, start: float = 0.0) -> float:
    """Hold `streams` open at `load` for 10 s, long enough for the averages to settle; returns the end."""
    for step in range(201):
        admission.admits(streams, load, start + step * 0.05)
    return start + 10.0


def test_a_busy_server_caps_streams_at_what_would_bring_it_back_to_max_load():
    admission = LoadAdmission(max_load=0.9)
    _settled(admission, 1000, 0.95)
    assert admission.cap == pytest.approx(1000 * 0.9 / 0.95, rel=1e-3)
    assert not admission.admits(1000, 0.95, 10.0)
    assert admission.admits(900, 0.95, 10.0)


def test_a_server_with_headroom_admits_up_to_the_streams_it_has_room_for():
    admission = LoadAdmission(max_load=0.9)
    _settled(admission, 600, 0.6)
    assert admission.cap == pytest.approx(900, rel=1e-3)
    assert admission.admits(880, 0.6, 10.0)
    assert not admission.admits(920, 0.6, 10.0)


def test_light_load_sets_no_cap_and_leaves_the_session_limit_to_its_own_check():
    admission = LoadAdmission(max_load=0.9, time_constant_s=1.0)
    end = _settled(admission, 10, 0.05)
    assert admission.cap is None and admission.admits(10_000, 0.05, end)
    _settled(admission, 400, 0.5, start=end)  # engaged: 720, whatever max_sessions says
    assert admission.cap == pytest.approx(720, rel=1e-3)


def test_the_cap_follows_the_stream_count_with_a_lag_not_at_once():
    admission = LoadAdmission(max_load=0.9, time_constant_s=1.0)
    _settled(admission, 1000, 0.9)
    admission.admits(500, 0.9, 10.05)  # half the streams gone a moment ago: the average barely moved
    assert admission.cap > 950


def test_a_few_streams_are_always_admitted_and_max_load_1_turns_it_off():
    busy = LoadAdmission(max_load=0.5)
    _settled(busy, 1, 1.0)  # one client sending faster than real time keeps the scheduler busy
    assert busy.cap == MIN_CAP
    assert busy.admits(MIN_CAP - 1, 1.0, 10.0) and not busy.admits(MIN_CAP, 1.0, 10.0)
    off = LoadAdmission(max_load=1.0)
    _settled(off, 99, 1.0)
    assert off.admits(99, 1.0, 10.0)
