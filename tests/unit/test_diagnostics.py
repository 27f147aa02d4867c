"""thor/diagnostics.py: bounded frame log, redaction, the document."""

from __future__ import annotations

import json
import logging
from datetime import datetime, UTC

from growatt_thor.thor.diagnostics import (
    FRAME_CHARS, FrameLog, RecentWarnings, build, redact_frame, redact_settings, tag_hash)

T = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_frame_log_is_bounded_in_count_and_size():
    log = FrameLog(size=3)
    for n in range(10):
        log.inbound(T, f'[2,"{n}","Heartbeat",{{}}]')
    log.outbound(T, "x" * (FRAME_CHARS * 10))
    assert [f["frame"] for f in log.dump()["received"]] == [
        '[2,"7","Heartbeat",{}]', '[2,"8","Heartbeat",{}]', '[2,"9","Heartbeat",{}]']
    (sent,) = log.dump()["sent"]
    assert len(sent["frame"]) < FRAME_CHARS + 40 and "40000 characters" in sent["frame"]


def test_the_frame_log_keeps_to_its_character_budget():
    log = FrameLog(size=200, budget=10_000)
    for n in range(100):
        log.inbound(T, "m" * 999 + str(n % 10))  # 1,000 characters each
    kept = [f["frame"] for f in log.dump()["received"]]
    assert len(kept) == 10 and kept[-1].endswith("9")
    assert sum(len(f) for f in kept) <= 10_000
    for _ in range(300):
        log.inbound(T, "[]")  # small frames: the count bound again
    assert len(log.received) == 200 and log._chars["received"] == 400


def test_secrets_and_cards_are_redacted_when_dumped():
    log = FrameLog()
    log.inbound(T, '[3,"1",{"configurationKey":[{"key":"G_Authentication","value":"s3cret",'
                   '"readonly":false}]}]')
    log.inbound(T, '[2,"2","Authorize",{"idTag":"04A1B2C3"}]')
    log.inbound(T, '[2,"3","G_WifiPassword" oops')  # not JSON, names a secret key
    text = json.dumps(log.dump())
    assert "s3cret" not in text and "04A1B2C3" not in text and "oops" not in text
    assert tag_hash("04A1B2C3") in text and "G_Authentication" in text
    # the log line form leaves card ids alone, as before
    assert "04A1B2C3" in redact_frame('[2,"2","Authorize",{"idTag":"04A1B2C3"}]')


def test_settings_lose_passwords_tokens_and_key_files():
    cfg = {"port": 9000, "tls_keyfile": "/ssl/key.pem", "chargers": {
        "X": {"password": "hunter2", "max_current": 16}}, "token": "abc", "tls_certfile": None}
    out = redact_settings(cfg)
    assert out["chargers"]["X"] == {"password": "***", "max_current": 16}
    assert out["token"] == "***" and out["tls_keyfile"] == "***" and out["port"] == 9000


def test_recent_warnings_keep_the_last_lines_only():
    handler = RecentWarnings(size=2)
    logger = logging.getLogger("test.diagnostics")
    logger.addHandler(handler)
    try:
        for n in range(4):
            logger.warning("w%d", n)
        logger.info("not kept")
    finally:
        logger.removeHandler(handler)
    assert [ln.split()[-1] for ln in handler.lines] == ["w2", "w3"]


def test_the_document_has_every_part_and_hashes_tags_everywhere():
    doc = build(version="0.1.0", created=T, settings={"password": "x"},
                chargers=[{"snapshot": {"charger_id": "X", "firmware": "f", "config": {}},
                           "config": {"G_CardPin": "1234", "G_MaxCurrent": "16"},
                           "frames": FrameLog(), "queue": {"length": 0},
                           "history": [{"key": "G_MaxCurrent", "status": "Accepted"}]}],
                warnings=["w"], sessions={"X": {"sessions": [{"id_tag": "CARD1"}]}})
    assert doc["chargers"][0]["configuration"] == {"G_CardPin": "***", "G_MaxCurrent": "16"}
    assert doc["chargers"][0]["state"] == {"charger_id": "X", "firmware": "f"}
    assert "CARD1" not in json.dumps(doc) and doc["settings"] == {"password": "***"}
    assert set(doc) == {"pack", "version", "created", "settings", "chargers",
                        "recent_warnings", "last_sessions"}
