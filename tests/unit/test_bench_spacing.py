"""bench/spacing.py: the write queue's spacing as one charger sees it."""

from __future__ import annotations

from bench.spacing import Call, Rules, check

RULES = Rules(spacing=15, command_spacing=2, poll_pause=20, grid_poll_interval=30)


def startup(t: float) -> list[Call]:
    """The start-up sequence right after a connection at ``t``."""
    return [Call("TriggerMessage", {"requestedMessage": "StatusNotification"}, t + .1, t + .11),
            Call("GetConfiguration", {}, t + .2, t + .21),
            Call("GetConfiguration", {"key": ["G_PeriodTime"]}, t + .3, t + .31),
            Call("DataTransfer", {"messageId": "get_external_meterval"}, t + .4, t + .41)]


def write(t: float, key: str = "G_MaxCurrent") -> list[Call]:
    """A write and its read-back."""
    return [Call("ChangeConfiguration", {"key": key, "value": "10"}, t, t + .01),
            Call("GetConfiguration", {"key": [key]}, t + .02, t + .03)]


def poll(t: float) -> Call:
    return Call("DataTransfer", {"messageId": "get_external_meterval"}, t, t + .01)


def test_a_well_spaced_charger_passes():
    calls = startup(0) + write(15.1) + write(30.2, "G_ExternalLimitPower") + [poll(50.3),
                                                                              poll(80.3)]
    rep = check(calls, [0.0], RULES)
    assert rep.violations == [] and rep.overlaps == 0
    assert rep.queue_calls == 4 and round(rep.min_write_gap_s, 2) == 15.07


def test_a_write_too_soon_after_the_connection_or_a_write_is_caught():
    rep = check(startup(0) + write(5.0) + write(10.0), [0.0], RULES)
    assert len(rep.violations) == 2 and "ChangeConfiguration 5.00 s" in rep.violations[0]


def test_polls_too_close_to_a_write_or_each_other_are_caught():
    rep = check(startup(0) + write(15.1) + [poll(25.0), poll(40.0)], [0.0], RULES)
    assert len(rep.violations) == 2  # 9.9 s after the write; 15 s after the first poll


def test_a_call_before_the_previous_was_answered_is_an_overlap():
    calls = startup(0)
    calls[2] = Call("GetConfiguration", {"key": ["x"]}, 0.205, 0.31)  # before .21
    assert check(calls, [0.0], RULES).overlaps == 1
    unanswered = [Call("TriggerMessage", {}, 0.1, None), *startup(0)[1:]]
    assert check(unanswered, [0.0], RULES).overlaps == 1


def test_spacing_restarts_at_each_connection():
    calls = startup(0) + startup(100) + write(115.2)
    rep = check(calls, [0.0, 100.0], RULES)
    assert rep.violations == [] and rep.queue_calls == 1
    assert check(startup(0) + startup(100) + write(110), [0.0, 100.0], RULES).violations


def test_gaps_short_by_the_simulators_skew_pass_and_more_does_not():
    # on a busy machine the simulator notes a connection or an answer a little late
    assert check(startup(0) + write(14.96), [0.0], RULES).violations == []
    assert len(check(startup(0) + write(14.9), [0.0], RULES).violations) == 1
    assert len(check(startup(0) + write(15.0) + write(29.9), [0.0], RULES).violations) == 1
