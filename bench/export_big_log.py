"""Benchmark: export one year from a 100,000-session log.

    .venv/bin/python -m bench.export_big_log [--sessions 100000]

Writes a synthetic log (sessions spread evenly over the years before 2026-12-31,
a quarter of them with a comma in the location) into a temporary folder with
the pack's own writer, then times :func:`export_range` for 2026 (best of 3).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "apps" / "growatt_thor")]

from growatt_thor.thor import csvlog  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "growatt_thor_sessions.csv"
        end = datetime(2026, 12, 31, 20, 0)
        step = timedelta(days=365 * 6) / args.sessions  # spread over six years instead
        lines = []
        for i in range(args.sessions):
            start = end - step * (args.sessions - 1 - i)
            stop = start + timedelta(hours=3, minutes=i % 60)
            lines.append(csvlog.format_line([
                "XGJ00003214700CA", "Home, driveway" if i % 4 == 0 else "Home",
                start.strftime("%Y-%m-%d %H:%M:%S"), stop.strftime("%Y-%m-%d %H:%M:%S"),
                f"{(i % 500) / 10:.3f}", f"{(i % 500) / 40:.2f}",
                f"{(stop - start).total_seconds() / 60:.1f}", str(1000 + i)]))
        t = time.perf_counter()
        csvlog.append_lines(log, lines)
        write_s = time.perf_counter() - t
        out = Path(tmp) / "www"
        out.mkdir()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            dest, rows = csvlog.export_range(log, out, date(2026, 1, 1), date(2026, 12, 31))
            times.append(time.perf_counter() - t)
        size_mb = log.stat().st_size / 1e6
    print(f"log: {args.sessions} sessions, {size_mb:.1f} MB (written in {write_s:.2f} s)")
    print(f"export 2026-01-01..2026-12-31: {rows} rows in {min(times) * 1000:.0f} ms "
          f"(best of 3; worst {max(times) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
