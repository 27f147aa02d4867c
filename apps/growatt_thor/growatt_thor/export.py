"""Export sessions from the CSV log on the command line.

    PYTHONPATH=apps python -m growatt_thor.export growatt_thor_sessions.csv \\
        --from 2026-01-01 --to 2026-12-31 [--out DIR]

Writes ``growatt_thor_export_<from>_<to>.csv`` (same columns, sessions whose
start falls in the range, inclusive) into DIR (default: the log's folder).
Exit status 2 with a message on bad input; nothing is written then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .thor.csvlog import export_range, parse_date


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m growatt_thor.export",
                                 description="Export a date range of the THOR session log.")
    ap.add_argument("log", type=Path, help="the session CSV (growatt_thor_sessions.csv)")
    ap.add_argument("--from", dest="date_from", required=True, help="YYYY-MM-DD")
    ap.add_argument("--to", dest="date_to", required=True, help="YYYY-MM-DD")
    ap.add_argument("--out", type=Path, help="folder for the export (default: the log's)")
    args = ap.parse_args(argv)
    try:
        d_from = parse_date(args.date_from, "--from")
        d_to = parse_date(args.date_to, "--to")
        path, rows = export_range(args.log, args.out or args.log.resolve().parent, d_from, d_to)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{rows} session(s) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
