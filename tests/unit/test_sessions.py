"""Session accounting and the CSV writer: every exactly-once case of the issue."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta, timezone, UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from growatt_thor.export import main as export_main
from growatt_thor.thor import csvlog
from growatt_thor.thor.sessions import COLUMNS, SessionBook

CID = "XGJ00003214700CA"
TZ = timezone(timedelta(hours=1))  # the THOR's G_TimeZone UTC+1 (naive local stamps)
AMS = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2025, 12, 18, 22, 0, 9, tzinfo=UTC)  # 23:00:09 local


def book(**kw) -> SessionBook:
    return SessionBook(charger_tz=TZ, csv_tz=kw.pop("csv_tz", AMS),
                       location={CID: "Home, driveway"}, **kw)


def local(dt: datetime, sep: str = "T") -> str:
    return dt.astimezone(TZ).strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def started(b: SessionBook, tx: int = 1001, at: datetime = T0) -> None:
    b.on_started(CID, {"transaction_id": tx, "meter_start": 0, "timestamp": local(at),
                       "id_tag": "freevenIdTag"}, at)


def meter(b: SessionBook, wh: float, tx: int = 1001, at: datetime = T0) -> None:
    b.on_meter(CID, {"transaction_id": tx, "values": {"energy_wh": wh}}, at)


def stopped(b: SessionBook, wh: int, tx: int = 1001, at: datetime | None = None,
            reason: str = "EVDisconnected", stamp: datetime | None = None,
            last: float | None = None) -> None:
    at = at or T0 + timedelta(hours=7)
    b.on_stopped(CID, {"transaction_id": tx, "meter_stop": wh, "reason": reason,
                       "timestamp": local(stamp or at), "last_meter_energy_wh": last}, at)


def record(b: SessionBook, rid: int, tx: int, start: datetime, end: datetime, wh: int,
           kind: str = "currentrecord", now: datetime | None = None) -> None:
    b.on_record(CID, {"kind": kind, "record_id": rid, "transaction_id": tx,
                      "start_time": local(start, " "), "end_time": local(end, " "),
                      "energy_wh": wh, "cost_raw": wh * 25 // 1000}, now or end)


def rows(b: SessionBook, now: datetime) -> list[dict]:
    b.ready(now)
    out = [e["row"] for e in b.outbox]
    for e in list(b.outbox):
        b.written(e["id"])
    return out


END = T0 + timedelta(hours=6, minutes=58, seconds=56)  # 2025-12-19 05:59:05 local


def test_a_full_session_with_its_record_is_one_correct_row():
    b = book()
    started(b)
    meter(b, 51000)
    stopped(b, 51623, at=END)
    assert rows(b, END) == []  # waits for the charger's record (it has the cost)
    record(b, 785, 1001, T0, END, 51623)
    assert rows(b, END) == [{
        "charger_id": CID, "location": "Home, driveway",
        "start_time": "2025-12-18 23:00:09", "end_time": "2025-12-19 05:59:05",
        "energy_kwh": "51.623", "cost": "12.90", "duration_minutes": "418.9",
        "transaction_id": "1001", "id_tag": "freevenIdTag"}]  # the tag: not in the CSV


def test_record_before_the_stop_and_again_after_a_reconnect_is_one_row():
    b = book()
    started(b)
    record(b, 785, 1001, T0, END, 51623)
    stopped(b, 51623, at=END)
    assert len(rows(b, END)) == 1
    record(b, 50, 1001, T0, END, 51623, kind="frozenrecord")  # sent again after reconnect
    record(b, 785, 1001, T0, END, 51623)
    assert rows(b, END + timedelta(hours=1)) == []


def test_without_a_record_the_row_comes_after_the_wait_with_the_configured_price():
    b = book(price_per_kwh=0.30, record_wait=60)
    started(b)
    stopped(b, 10000, at=END)
    assert rows(b, END + timedelta(seconds=59)) == []
    (row,) = rows(b, END + timedelta(seconds=60))
    assert (row["energy_kwh"], row["cost"]) == ("10.000", "3.00")
    assert rows(b, END + timedelta(hours=2)) == []


def test_a_repeated_stop_transaction_is_one_row():
    b = book(record_wait=0)
    started(b)
    stopped(b, 5000, at=END)
    stopped(b, 5000, at=END)
    assert len(rows(b, END)) == 1
    stopped(b, 5000, at=END + timedelta(minutes=3))  # resent from the offline queue later
    assert rows(b, END + timedelta(minutes=3)) == []


def test_a_session_across_a_disconnect_and_a_late_stop_from_the_offline_queue():
    b = book(record_wait=30)
    started(b)
    meter(b, 2000)
    # the connection drops; the session ends while offline; after the reconnect the THOR
    # sends its frozenrecord first and the queued StopTransaction later
    record(b, 48, 1001, T0, END, 7000, kind="frozenrecord", now=END + timedelta(hours=1))
    stopped(b, 7000, at=END + timedelta(hours=1, seconds=10), stamp=END)
    (row,) = rows(b, END + timedelta(hours=1, seconds=10))
    assert (row["end_time"], row["energy_kwh"], row["transaction_id"]) == (
        "2025-12-19 05:59:05", "7.000", "1001")


def test_the_journal_carries_a_session_across_a_restart():
    b = book(record_wait=0)
    started(b)
    meter(b, 3000)
    saved = b.to_json()
    b2 = book(record_wait=0)
    b2.load_json(saved)
    stopped(b2, 4000, at=END)
    (row,) = rows(b2, END)
    assert row["start_time"] == "2025-12-18 23:00:09" and row["energy_kwh"] == "4.000"
    # and the restarted book still knows it: the same stop again is nothing
    b3 = book(record_wait=0)
    b3.load_json(b2.to_json())
    stopped(b3, 4000, at=END)
    assert rows(b3, END) == []


def test_sessions_while_we_were_away_come_from_frozenrecords_once_each():
    b = book(record_wait=30)
    days = [T0 - timedelta(days=d) for d in (3, 2, 1)]
    for rid, (day, tx) in enumerate(zip(days, (0, 1, 1)), start=47):  # ids repeat
        record(b, rid, tx, day, day + timedelta(hours=2), 9000 + rid, kind="frozenrecord",
               now=T0)
    got = rows(b, T0 + timedelta(seconds=30))
    assert [r["transaction_id"] for r in got] == ["0", "1", "1"]
    assert [r["energy_kwh"] for r in got] == ["9.047", "9.048", "9.049"]
    assert got[0]["duration_minutes"] == "120.0"
    for rid, (day, tx) in enumerate(zip(days, (0, 1, 1)), start=47):  # again, next reconnect
        record(b, rid, tx, day, day + timedelta(hours=2), 9000 + rid, kind="frozenrecord",
               now=T0 + timedelta(hours=1))
    assert rows(b, T0 + timedelta(hours=2)) == []


def test_powerloss_stop_with_meter_stop_zero_takes_the_best_evidence():
    b = book(record_wait=0)
    started(b)
    meter(b, 12000, at=T0 + timedelta(hours=2))
    # after a reboot: PowerLoss, meterStop 0, dated at the session's start
    stopped(b, 0, at=T0 + timedelta(hours=2, minutes=5), reason="PowerLoss", stamp=T0,
            last=12000)
    (row,) = rows(b, T0 + timedelta(hours=2, minutes=5))
    assert row["energy_kwh"] == "12.000"
    assert row["end_time"] == "2025-12-19 01:00:09"  # the last meter reading, not the start
    assert row["duration_minutes"] == "120.0"


def test_powerloss_with_a_record_uses_the_record():
    b = book(record_wait=60)
    started(b)
    meter(b, 1000)
    stopped(b, 0, at=T0 + timedelta(hours=3), reason="PowerLoss", stamp=T0)
    record(b, 786, 1001, T0, T0 + timedelta(hours=2, minutes=30), 15000)
    (row,) = rows(b, T0 + timedelta(hours=3))
    assert (row["energy_kwh"], row["end_time"], row["cost"]) == (
        "15.000", "2025-12-19 01:30:09", "3.75")


def test_times_are_converted_from_charger_local_to_the_configured_zone():
    b = book(record_wait=0, csv_tz=UTC)
    started(b)
    stopped(b, 1000, at=END)
    (row,) = rows(b, END)
    assert (row["start_time"], row["end_time"]) == ("2025-12-18 22:00:09", "2025-12-19 04:59:05")


def test_duration_across_the_dst_change_is_real_time():
    ams = SessionBook(charger_tz=AMS, csv_tz=AMS, record_wait=0)
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # 01:30 CET
    end = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 CEST
    fmt = "%Y-%m-%dT%H:%M:%S"
    ams.on_started(CID, {"transaction_id": 5, "meter_start": 0,
                         "timestamp": start.astimezone(AMS).strftime(fmt)}, start)
    ams.on_stopped(CID, {"transaction_id": 5, "meter_stop": 100,
                         "timestamp": end.astimezone(AMS).strftime(fmt)}, end)
    (row,) = rows(ams, end)
    assert (row["start_time"], row["end_time"], row["duration_minutes"]) == (
        "2026-03-29 01:30:00", "2026-03-29 03:30:00", "60.0")


# --- the CSV file -----------------------------------------------------------------------


def line(**kw) -> str:
    row = {c: "" for c in COLUMNS} | {"charger_id": CID, "start_time": "2026-01-05 10:00:00"}
    return csvlog.format_line((row | kw)[c] for c in COLUMNS)


def test_header_once_whole_lines_and_quoted_location(tmp_path: Path):
    path = tmp_path / "s.csv"
    csvlog.append_lines(path, [line(location="Home, driveway")])
    csvlog.append_lines(path, [line(transaction_id="2")])
    text = path.read_text()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert text.count("charger_id") == 1 and text.endswith("\n")
    assert '"Home, driveway"' in text
    assert [r["location"] for r in csvlog.read_rows(path)] == ["Home, driveway", ""]


def test_a_torn_last_line_is_cut_and_complete_rows_are_never_touched(tmp_path: Path):
    path = tmp_path / "s.csv"
    csvlog.append_lines(path, [line(transaction_id="1")])
    before = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(line(transaction_id="2").encode()[:17])  # a crash mid-append
    csvlog.append_lines(path, [line(transaction_id="2")])
    assert path.read_bytes() == before + line(transaction_id="2").encode()


def test_an_unwritable_place_raises_and_writes_nothing(tmp_path: Path):
    with pytest.raises(OSError):  # missing folder
        csvlog.append_lines(tmp_path / "missing" / "s.csv", [line()])
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError):  # a file where the folder should be
        csvlog.append_lines(tmp_path / "file" / "s.csv", [line()])
    if Path("/dev/full").exists():
        with pytest.raises(OSError):  # disk full (ENOSPC)
            csvlog.append_lines(Path("/dev/full"), [line()])


def test_lines_present_finds_rows_appended_before_a_crash(tmp_path: Path):
    path = tmp_path / "s.csv"
    a, b = line(transaction_id="1"), line(transaction_id="2")
    csvlog.append_lines(path, [a])
    assert csvlog.lines_present(path, [a, b]) == {a}


def test_export_is_inclusive_by_start_date_and_refuses_bad_input(tmp_path: Path):
    path = tmp_path / "s.csv"
    days = ["2025-12-31 23:59:59", "2026-01-01 00:00:00", "2026-06-30 12:00:00",
            "2026-12-31 23:59:59", "2027-01-01 00:00:00"]
    csvlog.append_lines(path, [line(start_time=d, location="a,b") for d in days])
    out = tmp_path / "www"
    out.mkdir()
    dest, n = csvlog.export_range(path, out, date(2026, 1, 1), date(2026, 12, 31))
    assert dest.name == "growatt_thor_export_2026-01-01_2026-12-31.csv" and n == 3
    with open(dest, newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["start_time"] for r in got] == days[1:4] and got[0]["location"] == "a,b"
    with pytest.raises(ValueError):
        csvlog.export_range(path, out, date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(FileNotFoundError):
        csvlog.export_range(tmp_path / "nope.csv", out, date(2026, 1, 1), date(2026, 1, 2))
    assert sorted(p.name for p in out.iterdir()) == [dest.name]  # nothing else written


def test_command_line_export(tmp_path: Path, capsys):
    path = tmp_path / "s.csv"
    csvlog.append_lines(path, [line(start_time="2026-03-01 08:00:00")])
    assert export_main([str(path), "--from", "2026-03-01", "--to", "2026-03-01"]) == 0
    assert (tmp_path / "growatt_thor_export_2026-03-01_2026-03-01.csv").exists()
    assert "1 session(s)" in capsys.readouterr().out
    assert export_main([str(path), "--from", "2026-13-01", "--to", "2026-03-01"]) == 2
    assert "is not a date" in capsys.readouterr().err
