from __future__ import annotations

import pytest

from aiperf_hpc.core.conversations import ConversationCursor, NextTurn


def test_single_turn_conversations_cycle_and_may_overlap() -> None:
    cursor = ConversationCursor([[0], [0], [0]])
    picks = []
    for _ in range(7):
        turn = cursor.next_ready(0)
        assert turn is not None
        cursor.started(turn, "worker-0")
        picks.append(turn.conversation_index)
    assert picks == [0, 1, 2, 0, 1, 2, 0]  # credit k carries conversation k mod n, none ever returned


def test_a_multi_turn_conversation_is_exclusive_and_sticky() -> None:
    cursor = ConversationCursor([[0, 5], [0]])
    first = cursor.next_ready(0)
    assert first == NextTurn(0, 0, None)
    cursor.started(first, "worker-1")
    other = cursor.next_ready(0)
    assert other == NextTurn(1, 0, None)  # conversation 0 is running: not started twice
    cursor.started(other, "worker-0")
    assert cursor.next_ready(0) == NextTurn(1, 0, None)  # single-turn 1 may go again
    cursor.finished(0, 0, now_ns=100)
    assert cursor.next_ready_ns() == 105  # turn 1 waits its delay after the answer
    assert cursor.next_ready(104) == NextTurn(1, 0, None)
    second = cursor.next_ready(105)
    assert second == NextTurn(0, 1, "worker-1")  # to the worker holding the history
    cursor.started(second, "worker-1")
    cursor.finished(0, 1, now_ns=200)
    assert cursor.next_ready(200) == NextTurn(0, 0, None)  # finished: conversation 0 may start again


def test_abandoned_conversations_skip_their_remaining_turns() -> None:
    cursor = ConversationCursor([[0, 0, 0]])
    turn = cursor.next_ready(0)
    assert turn is not None
    cursor.started(turn, "w")
    cursor.finished(0, 0, now_ns=0)
    cursor.abandon(0)
    assert cursor.next_ready_ns() is None
    assert cursor.next_ready(0) == NextTurn(0, 0, None)


def test_fixed_schedules_take_named_turns_once_their_predecessor_returned() -> None:
    cursor = ConversationCursor([[0, 0]])
    assert cursor.take(0, 1) is None
    first = cursor.take(0, 0)
    assert first is not None
    cursor.started(first, "w")
    assert cursor.take(0, 1) is None
    cursor.finished(0, 0, now_ns=10)
    assert cursor.take(0, 1) == NextTurn(0, 1, "w")


def test_every_conversation_needs_a_turn() -> None:
    with pytest.raises(ValueError, match="at least one turn"):
        ConversationCursor([[0], []])


def test_one_pass_starts_every_conversation_once_then_is_exhausted() -> None:
    cursor = ConversationCursor([[0, 0], [0]], cycle=False)
    first = cursor.next_ready(0)
    assert first == NextTurn(0, 0, None)
    cursor.started(first, "w")
    second = cursor.next_ready(0)
    assert second == NextTurn(1, 0, None)
    cursor.started(second, "w")
    assert cursor.next_ready(0) is None
    assert not cursor.exhausted  # conversation 0 still has a turn to go
    cursor.finished(0, 0, now_ns=0)
    last = cursor.next_ready(0)
    assert last == NextTurn(0, 1, "w")
    cursor.started(last, "w")
    cursor.finished(0, 1, now_ns=0)
    assert cursor.exhausted
