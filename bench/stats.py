"""Small statistics and process readings the benchmarks share (pure, or /proc only)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def percentile(values: Iterable[float], p: float) -> float:
    """The ``p``-th percentile (0..100) by the nearest-rank method; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100), at least 1
    return ordered[int(min(rank, len(ordered))) - 1]


def summary_ms(seconds: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds, rounded to 0.1 ms."""
    values = [s * 1000 for s in seconds]
    return {k: round(percentile(values, p), 1) for k, p in
            (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")
