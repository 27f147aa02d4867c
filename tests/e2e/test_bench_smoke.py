"""bench/load.py as a smoke test: 5 chargers for 3 s against the pack and the bare server."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.adharness import REPO


def test_load_benchmark_runs(tmp_path):
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, "-m", "bench.load", "--chargers", "5", "--seconds",
                           "3", "--power-cut", "--write-spacing", "1", "--poll-pause", "1",
                           "--grid-poll", "5", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    results = {r["server"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"pack", "bare"}
    for r in results.values():
        assert r["connected"] == 5 and r["errors"] == 0 and r["ok"] == r["sent"] >= 10
        assert r["round_trip_ms"]["p50"] > 0 and r["cpu_ms_per_message"] > 0
        assert r["power_cut"]["booted"] == 5
    pack = results["pack"]
    assert pack["entity_latency_ms"]["samples"] > 0
    cut = pack["power_cut"]
    assert cut["entities_live"] == 5
    # the write queued during the cut reached every charger, one call at a time, spaced
    assert cut["writes_after_cut"] == 5 and cut["queue_calls"] >= 5
    assert cut["overlapping_calls"] == 0 and cut["spacing_violations"] == 0, cut
    assert cut["min_write_gap_s"] >= 1.0 - 0.05  # the simulator's skew (bench/spacing.py)
    assert pack["tracebacks_in_log"] == 0
