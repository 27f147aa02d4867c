"""The write queue's decisions, with an injected clock (plain numbers, in seconds)."""

from __future__ import annotations

import math

from growatt_thor.thor.writequeue import (
    COMMAND,
    CONFIG,
    DONE,
    GAVE_UP,
    RETRY,
    SUPERSEDED,
    QueueSettings,
    Request,
    WriteQueue,
)


def cfg(key: str, value: str) -> Request:
    return Request(slot=key, kind=CONFIG, action="ChangeConfiguration", value=value)


def cmd(value: str) -> Request:
    action = "RemoteStartTransaction" if value == "start" else "RemoteStopTransaction"
    return Request(slot="transaction", kind=COMMAND, action=action, value=value)


def online_queue(**kw) -> WriteQueue:
    q = WriteQueue(QueueSettings(**{"spacing": 15, "poll_pause": 20, "command_spacing": 2,
                                    "retries": 2, "backoff": 10, "settle": 0, **kw}))
    q.on_connect(-100.0)  # connected long ago: the first write may go at once
    return q


def run(q: WriteQueue, until: float, step: float = 0.5) -> list[tuple[float, str]]:
    """Drive the queue as the writer does; every call answers at once. (time, what) sent."""
    sent, t = [], 0.0
    while t <= until:
        req = q.take(t)
        if req is not None:
            sent.append((t, req.describe()))
            q.finished(req, True, t)
        else:
            t += step
    return sent


def test_idle_queue_sends_at_once_then_keeps_the_spacing():
    q = online_queue()
    q.put(cfg("G_MaxCurrent", "10"), 0)
    q.put(cfg("G_ExternalLimitPower", "9"), 0)
    sent = run(q, 40)
    assert sent == [(0.0, "G_MaxCurrent=10"), (15.0, "G_ExternalLimitPower=9")]


def test_rapid_changes_of_one_setting_coalesce_to_the_last_value_in_place():
    q = online_queue()
    q.put(cfg("G_ExternalLimitPower", "9"), 0)
    q.take(0)  # in flight
    for amps in range(6, 16):
        q.put(cfg("G_MaxCurrent", str(amps)), 0.1 * amps)
    q.put(cfg("G_ChargerMode", "1"), 2)
    assert q.summary()["pending"] == ["G_MaxCurrent=15", "G_ChargerMode=1"]
    assert q.summary()["length"] == 3


def test_independent_settings_go_in_order():
    q = online_queue()
    for i, key in enumerate(("A", "B", "C", "D")):
        q.put(cfg(key, "1"), i)
    assert [w for _, w in run(q, 60)] == ["A=1", "B=1", "C=1", "D=1"]


def test_value_the_charger_has_is_not_written_and_cancels_a_waiting_change():
    q = online_queue()
    assert q.put(cfg("G_MaxCurrent", "16"), 0, current="16") is None
    q.put(cfg("G_ExternalLimitPower", "9"), 0)
    q.take(0)
    q.put(cfg("G_MaxCurrent", "10"), 1, current="16")
    assert q.is_waiting("G_MaxCurrent")
    q.put(cfg("G_MaxCurrent", "16"), 2, current="16")  # changed back before it was sent
    assert not q.is_waiting("G_MaxCurrent")


def test_commands_go_before_waiting_writes_but_never_overlap_a_call():
    q = online_queue()
    q.put(cfg("A", "1"), 0)
    q.put(cfg("B", "1"), 0)
    first = q.take(0)
    q.put(cmd("start"), 1)
    assert q.take(1) is None  # A is still in flight
    q.finished(first, True, 1.5)
    req, at = q.next_due()
    assert req.value == "start" and at == 3.5  # command spacing, not the 15 s
    assert q.take(3.5).value == "start"
    q.finished(q.in_flight, True, 4)
    req, at = q.next_due()
    assert req.describe() == "B=1" and at == 19  # 15 s after the command


def test_start_then_stop_coalesce_to_stop():
    q = online_queue()
    q.put(cfg("A", "1"), 0)
    q.take(0)
    q.put(cmd("start"), 1)
    q.put(cmd("stop"), 2)
    assert q.summary()["pending"] == ["stop"]


def test_failed_write_is_retried_with_backoff_then_given_up():
    q = online_queue()
    q.put(cfg("A", "1"), 0)
    times, outcomes, t = [], [], 0.0
    while t < 200:
        req = q.take(t)
        if req is None:
            t += 0.5
            continue
        times.append(t)
        outcomes.append(q.finished(req, False, t))
    assert outcomes == [RETRY, RETRY, GAVE_UP]
    assert times == [0, 15, 35]  # max(spacing, backoff 10 s), then backoff 20 s
    assert not q.pending


def test_a_newer_value_supersedes_a_failed_one():
    q = online_queue()
    q.put(cfg("A", "1"), 0)
    req = q.take(0)
    q.put(cfg("A", "2"), 1)
    assert q.finished(req, False, 2) == SUPERSEDED
    assert q.summary()["pending"] == ["A=2"]


def test_a_retry_waiting_for_backoff_does_not_block_other_settings():
    q = online_queue(backoff=100)
    q.put(cfg("A", "1"), 0)
    q.put(cfg("B", "1"), 0)
    q.finished(q.take(0), False, 1)
    req, at = q.next_due()
    assert req.describe() == "B=1" and at == 16


def test_offline_requests_wait_coalesced_and_go_after_the_reconnect():
    q = WriteQueue(QueueSettings(spacing=15, command_ttl=60, settle=0))
    q.put(cfg("G_MaxCurrent", "10"), 0)
    q.put(cfg("G_MaxCurrent", "12"), 5)
    q.put(cmd("start"), 5)
    assert q.next_due() == (None, math.inf)
    assert q.take(10) is None
    expired = q.expire(100)  # the start waited longer than its time to live
    assert [r.value for r in expired] == ["start"]
    q.on_connect(200)
    assert q.take(200) is None  # the charger settles after connecting
    assert q.take(215).describe() == "G_MaxCurrent=12"


def test_link_lost_mid_call_keeps_the_request_without_using_an_attempt():
    q = online_queue(retries=0)
    q.put(cfg("A", "1"), 0)
    req = q.take(0)
    q.on_disconnect()
    assert q.finished(req, False, 1, offline=True) == RETRY
    assert req.attempts == 0 and q.is_waiting("A")
    q.on_connect(5)
    assert q.take(20) is req


def test_polling_waits_for_writes_and_the_pause_after_them():
    q = online_queue()
    assert q.poll_allowed(0)
    q.put(cfg("A", "1"), 0)
    assert not q.poll_allowed(0)  # a write is due
    req = q.take(0)
    assert not q.poll_allowed(0.5)  # in flight
    q.finished(req, True, 1)
    assert not q.poll_allowed(20)
    assert q.poll_allowed(21)


def test_answers_are_done():
    q = online_queue()
    q.put(cfg("A", "1"), 0)
    assert q.finished(q.take(0), True, 0) == DONE
    assert q.summary() == {"length": 0, "pending": [], "in_flight": None, "next_at": None,
                           "next": None}


def test_a_change_settles_before_it_goes_so_a_dragged_slider_is_one_write():
    q = online_queue(settle=1.0)
    for i, amps in enumerate(range(6, 16)):
        q.put(cfg("G_MaxCurrent", str(amps)), 0.2 * i)  # one change every 200 ms
    assert run(q, 10) == [(3.0, "G_MaxCurrent=15")]  # 1 s after the last change
