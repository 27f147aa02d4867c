"""The session CSV: append-only, whole lines, fsynced; and date-range export.

Blocking file work: callers on an event loop run these in an executor.
The log file is never rewritten. The one repair it makes: if the last line has
no newline (a crash tore the previous append), that fragment is cut off before
the next append; its row is still in the journal and is appended again whole.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from datetime import date
from pathlib import Path
from collections.abc import Iterable, Iterator

from . import storage
from .sessions import COLUMNS


def format_line(values: Iterable[str]) -> str:
    """One CSV line with ``\\n`` (fields with commas or quotes are quoted)."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(list(values))
    return buf.getvalue()


HEADER = format_line(COLUMNS)
START = COLUMNS.index("start_time")


def append_lines(path: Path, lines: list[str]) -> None:
    """Append whole lines (header first if the file is new), then fsync.

    Raises ``OSError`` (missing folder, permissions, disk full): nothing is lost,
    the caller keeps the rows and tries again.
    """
    storage.append_lines(path, "".join(lines), HEADER)


def lines_present(path: Path, lines: Iterable[str]) -> set[str]:
    """Which of ``lines`` the file already holds (after a crash between append and journal)."""
    wanted = set(lines)
    if not wanted or not path.exists():
        return set()
    found = set()
    with open(path, encoding="utf-8", newline="") as fh:
        for line in fh:
            if line in wanted:
                found.add(line)
    return found


def _value_rows(fh: Iterable[str], name: object, empty_ok: bool) -> Iterator[list[str]]:
    """The complete rows of a session log after checking its header."""
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None and empty_ok:
        return
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"{name}: not a session log (header {header!r})")
    for values in reader:
        if len(values) == len(COLUMNS):
            yield values


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        for values in _value_rows(fh, path, empty_ok=True):
            yield dict(zip(COLUMNS, values))


def parse_date(value: object, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a date (YYYY-MM-DD)") from None


def export_name(date_from: date, date_to: date) -> str:
    return f"growatt_thor_export_{date_from.isoformat()}_{date_to.isoformat()}.csv"


def export_range(src: Path, dest_dir: Path, date_from: date, date_to: date) -> tuple[Path, int]:
    """Rows whose session started in [date_from, date_to] to a new CSV; (path, rows).

    Raises ``ValueError`` for a bad range or a file that is not a session log,
    ``FileNotFoundError`` when ``src`` or ``dest_dir`` does not exist.
    """
    if date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    if not src.exists():
        raise FileNotFoundError(f"no session log at {src}")
    if not dest_dir.is_dir():
        raise FileNotFoundError(f"export folder {dest_dir} does not exist")
    lo, hi = date_from.isoformat(), date_to.isoformat()
    dest = dest_dir / export_name(date_from, date_to)
    count = 0
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out, \
                open(src, encoding="utf-8", newline="") as fh:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(COLUMNS)
            for values in _value_rows(fh, src, empty_ok=False):
                if lo <= values[START][:10] <= hi:
                    writer.writerow(values)
                    count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dest, count
