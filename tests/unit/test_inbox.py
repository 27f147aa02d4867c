"""The hub's durable inbox of session messages (thor/inbox.py)."""

from __future__ import annotations

from growatt_thor.thor.inbox import Inbox


def test_appends_survive_a_reopen_in_order(tmp_path):
    box = Inbox(tmp_path / "inbox.jsonl")
    assert box.append("A", "transaction_stopped", {"transaction_id": 1}) == 1
    assert box.append("A", "session_record", {"record": {"record_id": 7}}) == 2
    again = Inbox(tmp_path / "inbox.jsonl")
    assert again.last_seq == 2
    assert [e["seq"] for e in again.since(0)] == [1, 2]
    assert again.since(1) == [{"seq": 2, "cid": "A", "topic": "session_record",
                               "payload": {"record": {"record_id": 7}}}]


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(tmp_path):
    path = tmp_path / "inbox.jsonl"
    box = Inbox(path)
    box.append("A", "transaction_started", {"transaction_id": 1})
    with open(path, "a") as fh:
        fh.write('{"seq": 2, "cid": "A", "top')  # a crash mid-append: never acknowledged
    box = Inbox(path)
    assert box.last_seq == 1 and [e["seq"] for e in box.since(0)] == [1]
    assert box.append("A", "transaction_stopped", {"transaction_id": 1}) == 2
    assert [e["topic"] for e in Inbox(path).since(0)] == ["transaction_started",
                                                         "transaction_stopped"]


def test_bounded_to_the_newest_entries(tmp_path):
    box = Inbox(tmp_path / "inbox.jsonl", keep=10)
    for i in range(45):
        box.append("A", "transaction_stopped", {"transaction_id": i})
    seqs = [e["seq"] for e in Inbox(tmp_path / "inbox.jsonl", keep=10).since(0)]
    assert len(seqs) < 20 and seqs[-1] == 45 and seqs == sorted(seqs)
