"""Benchmark: where the morning kettle falls decides who has more starts and stops.

    .venv/bin/python -m bench.solar_kettle [--day clear] [--phases 1]

Takes one day of ``bench.solar``, finds its first kettle after 6:30 (a 2-kW step in the house
load) and moves it, unchanged, to every 20-s step within 5 minutes either side of where it
is. For each place it replays the day through the baseline (evcc's defaults) and the pack,
as ``bench.solar`` does, and prints the starts+stops and the surplus share of both, then how
often each needed more. On the clear 1-phase day the pack needs one more session whenever
the kettle comes after its morning start, and the baseline never: it rides any deficit
shorter than its 180-s disable delay.
"""

from __future__ import annotations

import argparse

from bench.solar import METER, baseline_settings, pack_settings, profiles, run

KETTLE_W = 2000.0
STEP = 10  # s, the profiles' resolution


def kettle(house: list[float]) -> tuple[int, int]:
    """(first, past-last) index of the first kettle after 6:30."""
    start = next(i for i in range(int(6.5 * 3600 / STEP), len(house))
                 if house[i] - house[i - 1] > 0.75 * KETTLE_W)
    end = next(i for i in range(start, len(house)) if house[i - 1] - house[i] > 0.75 * KETTLE_W)
    return start, end


def moved(house: list[float], start: int, end: int, shift: int) -> list[float]:
    h = list(house)
    for i in range(start, end):
        h[i] -= KETTLE_W
    for i in range(start + shift, end + shift):
        h[i] += KETTLE_W
    return h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--day", default="clear")
    ap.add_argument("--phases", type=int, default=1)
    args = ap.parse_args()
    pv, house = profiles(args.day, args.phases)
    start, end = kettle(house)
    print(f"{args.day}, {args.phases} phase(s): kettle at {start * STEP / 3600:.3f} h for "
          f"{(end - start) * STEP} s")
    tally = {"pack more": 0, "the same": 0, "baseline more": 0}
    for shift in range(-30, 31, 2):
        h = moved(house, start, end, shift)
        base = run(pv, h, baseline_settings(args.phases), interval=30.0)
        pack = run(pv, h, pack_settings(args.phases), interval=METER)
        key = ("pack more" if pack.switches > base.switches else
               "baseline more" if base.switches > pack.switches else "the same")
        tally[key] += 1
        print(f"kettle {shift * STEP:+5d} s: baseline {base.switches} starts+stops "
              f"{base.share:5.1f} %, pack {pack.switches} {pack.share:5.1f} %")
    print("starts+stops: " + ", ".join(f"{k} {n}" for k, n in tally.items()))


if __name__ == "__main__":
    main()
