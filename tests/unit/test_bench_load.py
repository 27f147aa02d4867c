"""The load benchmark's own pieces: percentiles, the schedule, the counting."""

from __future__ import annotations

import math

from bench.load import Tally, charger_ids, offsets, prefix
from bench.stats import percentile, summary_ms


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile(values, 100) == 100 and percentile(values, 0) == 1
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 50) == 2  # order does not matter
    assert math.isnan(percentile([], 50))


def test_summary_is_in_milliseconds():
    assert summary_ms([0.001, 0.002, 0.010]) == {"p50": 2.0, "p95": 10.0, "p99": 10.0,
                                                 "max": 10.0}


def test_offsets_spread_evenly_or_burst():
    assert offsets(4, 1.0, "spread") == [0.0, 0.25, 0.5, 0.75]
    assert offsets(3, 2.0, "burst") == [0.0, 0.0, 0.0]


def test_tally_counts_what_was_sent_and_got_back():
    t = Tally()
    for rtt in (0.002, 0.004):
        t.begin()
        t.done(rtt)
    t.begin()
    t.failed(TimeoutError())
    t.begin()
    t.failed(TimeoutError())
    assert (t.sent, t.ok, t.errors) == (4, 2, 2)
    assert t.rtts == [0.002, 0.004] and t.error_kinds == {"TimeoutError": 2}


def test_charger_ids_and_prefixes_are_distinct():
    ids = charger_ids(200)
    assert len(set(ids)) == 200 and len({prefix(c) for c in ids}) == 200
