"""The pure pieces of "only your chargers get in" and "floods cost nothing"."""

from __future__ import annotations

import logging

from growatt_thor.thor.bounds import AuthBackoff, RateLimitedLog, TokenBucket, printable
from growatt_thor.thor.config import slug
from growatt_thor.thor.identity import Admission, valid_charger_id

CID = "XGJ00003214700CA"


def test_printable_escapes_control_characters_and_caps_the_length():
    assert printable("a\nb\rc\td\x00e\\") == "a\\nb\\rc\\td\\x00e\\\\"
    long = printable("x" * 500, limit=10)
    assert long == "xxxxxxxxxx... (500 chars)"
    assert "\n" not in printable("\n" * 300)


def test_token_bucket_allows_the_burst_then_the_rate():
    b = TokenBucket(rate=2, burst=3)
    assert [b.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.allow(0.5) and not b.allow(0.5)  # one token per 0.5 s
    assert [b.allow(100.0) for _ in range(4)] == [True, True, True, False]  # never > burst


def test_rate_limited_log_counts_what_it_drops(caplog):
    log = RateLimitedLog(logging.getLogger("t.rl"), per_minute=2)
    with caplog.at_level(logging.WARNING, "t.rl"):
        sent = [log.log(0.0, logging.WARNING, "bad %s", i) for i in range(10)]
        assert sent == [True, True] + [False] * 8
        assert log.log(60.0, logging.WARNING, "bad again")
    assert caplog.messages[-1] == "bad again (8 similar lines suppressed)"
    assert not RateLimitedLog(logging.getLogger("t.off")).log(0, logging.DEBUG, "x")


def test_auth_backoff_doubles_after_the_free_tries_and_is_bounded():
    b = AuthBackoff(free=3, base=2, cap=10, max_sources=2)
    assert [b.failed("a", 0) for _ in range(3)] == [0, 0, 0]
    assert b.failed("a", 0) == 2 and b.failed("a", 0) == 4 and b.failed("a", 0) == 8
    assert b.failed("a", 0) == 10  # capped
    assert b.retry_after("a", 3) == 7 and b.retry_after("b", 3) == 0
    b.failed("b", 0), b.failed("c", 0)
    assert b.retry_after("a", 0) == 0  # forgotten: only max_sources addresses are kept
    b.succeeded("c")
    assert b.retry_after("c", 0) == 0


def test_charger_ids_are_exact_and_sane():
    assert valid_charger_id(CID) and valid_charger_id("thor-2_b")
    for bad in ("", "ws", "OCPP", "app", f"{CID}.", "a b", "a:b", "-a", "é", "A" * 49):
        assert not valid_charger_id(bad), bad


def test_admission_rules():
    configured = Admission.create([CID], slug, None, None)
    assert configured.decide(CID).admitted
    assert not configured.decide("OTHER1").admitted  # configured: only those
    assert "entities would be those of" in configured.decide(CID.lower()).reason

    first = Admission.create([], slug, None, None)
    v = first.decide(CID)
    assert v.admitted and v.first_contact and first.pinned == CID
    assert first.decide(CID).admitted and not first.decide(CID).first_contact
    assert not first.decide("OTHER1").admitted
    assert not first.decide(CID.lower()).admitted

    pinned = Admission.create([], slug, None, CID)  # remembered across a restart
    assert not pinned.decide("OTHER1").admitted and pinned.decide(CID).admitted

    closed = Admission.create([], slug, False, None)
    assert not closed.decide(CID).admitted

    opened = Admission.create([CID], slug, True, None)
    opened.max_unknown = 2
    assert opened.decide("A1").admitted and opened.decide("A2").admitted
    assert not opened.decide("A3").admitted  # bounded
    assert not opened.decide("a1").admitted  # the twin of A1


def test_config_refuses_ids_that_are_not_serials_or_share_a_prefix():
    import pytest

    from growatt_thor.thor.config import ConfigError, HubConfig, parse_args

    with pytest.raises(ConfigError, match="a charger id is its serial number"):
        parse_args(HubConfig, "hub", {"chargers": {f"{CID}.": {}}})
    with pytest.raises(ConfigError, match="would share one entity prefix"):
        parse_args(HubConfig, "hub", {"chargers": {CID: {}, CID.lower(): {}}})
    assert parse_args(HubConfig, "hub", {}).accept_unknown_chargers is None


def test_card_policy_any_or_listed_and_ha_starts():
    from growatt_thor.thor.identity import CardPolicy

    anyone = CardPolicy.create(None, None, True, "HomeAssistant")
    assert anyone.policy == "any" and anyone.status("WHATEVER") == "Accepted"
    listed = CardPolicy.create(None, ["CARD1"], True, "HomeAssistant")  # id_tags given
    assert listed.policy == "listed"
    assert [listed.status(t) for t in ("CARD1", "CARD2", "freevenIdTag", "HomeAssistant")] \
        == ["Accepted", "Invalid", "Invalid", "Accepted"]
    no_ha = CardPolicy.create("any", None, False, "HomeAssistant")
    assert no_ha.status("HomeAssistant") == "Blocked" and no_ha.status("X") == "Accepted"
    assert "starts from Home Assistant off" in no_ha.describe()
