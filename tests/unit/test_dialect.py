from datetime import datetime, timedelta, timezone, UTC
from zoneinfo import ZoneInfo

import pytest

from growatt_thor.thor.diagnostics import redact_frame
from growatt_thor.thor.dialect import (ExternalMeter, SessionRecord, parse_charger_time,
                                       parse_thor_timezone, parse_vendor_string, redact_config,
                                       utc_now_iso, zone_mismatch)

RECORD = ("id=785&connectorId=1&chargemode=3&plugtime=2025-12-18 18:48:54&unplugtime=2025-12-19 "
          "05:59:05&starttime=2025-12-18 23:00:09&endtime=2025-12-19 05:59:05&costenergy=51623&"
          "costmoney=1290&transactionId=1966523&workmode=7")


def test_session_record_parses_and_round_trips():
    r = SessionRecord.parse("currentrecord", RECORD)
    assert (r.record_id, r.energy_wh, r.cost_raw, r.transaction_id) == (785, 51623, 1290, 1966523)
    assert r.start_time == "2025-12-18 23:00:09"
    assert r.to_vendor_string() == RECORD


@pytest.mark.parametrize("bad", ["", "id=x&starttime=a&endtime=b", "connectorId=1", None])
def test_bad_session_record_is_a_value_error(bad):
    with pytest.raises(ValueError):
        SessionRecord.parse("frozenrecord", bad)


def test_external_meter():
    m = ExternalMeter.parse("used=1&wring=1&u-voltage=226&v-voltage=229&w-voltage=227&"
                            "u-current=1&v-current=2&w-current=0&power=-16")
    assert m.used and m.wiring == 1 and m.voltage == (226, 229, 227) and m.power_w == -16
    assert ExternalMeter.parse(m.to_vendor_string()) == m


def test_vendor_string_keeps_spaces_and_colons():
    assert parse_vendor_string("a=2025-12-18 18:48:54&b=&c") == {
        "a": "2025-12-18 18:48:54", "b": "", "c": ""}


def test_naive_charger_time_is_local():
    tz = ZoneInfo("Europe/Amsterdam")
    assert parse_charger_time("2025-12-18T23:00:09", tz) == datetime(2025, 12, 18, 22, 0, 9,
                                                                    tzinfo=UTC)
    assert parse_charger_time("2025-12-18 23:00:09", tz).hour == 22
    assert parse_charger_time("2025-12-18T22:00:09Z", tz).hour == 22  # zoned stays as sent
    with pytest.raises(ValueError):
        parse_charger_time("yesterday", tz)


def test_heartbeat_time_is_utc_with_z():
    now = datetime(2025, 12, 19, 10, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    assert utc_now_iso(now) == "2025-12-19T09:00:00Z"


def test_thor_timezone():
    assert parse_thor_timezone("UTC+1").utcoffset(None) == timedelta(hours=1)
    assert parse_thor_timezone("UTC-5:30").utcoffset(None) == -timedelta(hours=5, minutes=30)
    assert parse_thor_timezone("Mars") is None


def test_a_zone_that_disagrees_with_the_charger_is_named():
    ams, summer, winter = ZoneInfo("Europe/Amsterdam"), datetime(2026, 7, 1), datetime(2026, 1, 1)
    assert zone_mismatch("UTC+1", ams, summer.replace(tzinfo=UTC)) is None  # CEST
    assert zone_mismatch("UTC+1", ams, winter.replace(tzinfo=UTC)) is None
    problem = zone_mismatch("UTC+1", ZoneInfo("Europe/London"), summer.replace(
        tzinfo=UTC))
    assert problem and "G_TimeZone is UTC+1" in problem and "UTC+0 standard" in problem
    assert zone_mismatch("nonsense", ams, winter.replace(tzinfo=UTC)) is None


def test_secrets_are_redacted_in_config_and_frames():
    cfg = redact_config({"G_WifiPassword": "hunter2", "G_MaxCurrent": "16"})
    assert cfg == {"G_WifiPassword": "***", "G_MaxCurrent": "16"}
    frame = ('[3,"1",{"configurationKey":[{"key":"G_Authentication","value":"12345678",'
             '"readonly":false},{"key":"G_CardPin","value":"0000","readonly":false}]}]')
    out = redact_frame(frame)
    assert "12345678" not in out and "0000" not in out and "G_CardPin" in out
    assert "hunter2" not in redact_frame('[2,"5","ChangeConfiguration",{"value":"hunter2",'
                                         '"key":"G_WifiPassword"}]')
    assert redact_frame('[2,"1","GetConfiguration",{"key":["G_WifiPassword"]}]').startswith("[2")
