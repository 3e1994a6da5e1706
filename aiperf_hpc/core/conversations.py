"""Which conversation turn is sent next: the "what" of the timing manager (the "when" is schedule.py).

Pure. Single-turn conversations are used in turn, cyclically, and may be in flight several times at
once, so credit k of a single-turn dataset always carries conversation k mod n — whatever the
number of workers. A multi-turn conversation is exclusive while it runs: its turn t+1 becomes ready
`delay` after turn t returned, goes to the worker that holds its history, and a new conversation is
only started when no started one has a turn ready.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NextTurn:
    conversation_index: int
    turn_index: int
    worker_id: str | None  # the worker holding the conversation's history; None for a first turn


class ConversationCursor:
    def __init__(self, turn_delays_ns: list[list[int]], *, cycle: bool = True) -> None:
        """`turn_delays_ns[c][t]` is the pause before turn t of conversation c (ignored for t = 0).
        With `cycle` False every conversation is started once, in order (one pass over a dataset)."""
        if not turn_delays_ns or any(not turns for turns in turn_delays_ns):
            raise ValueError("every conversation needs at least one turn")
        self._delays_ns = turn_delays_ns
        self._cycle = cycle
        self._started_count = 0
        self._next_new = 0
        self._active: dict[int, str] = {}  # multi-turn conversation -> worker holding its history
        self._ready: list[tuple[int, int, int]] = []  # heap of (ready_ns, conversation, turn)

    def next_ready(self, now_ns: int) -> NextTurn | None:
        """The turn to send now, or None when nothing is ready (see `next_ready_ns`)."""
        if self._ready and self._ready[0][0] <= now_ns:
            _, conversation, turn = self._ready[0]
            return NextTurn(conversation, turn, self._active[conversation])
        count = len(self._delays_ns)
        if not self._cycle and self._started_count >= count:
            return None
        for step in range(count):
            conversation = (self._next_new + step) % count
            if conversation not in self._active:
                return NextTurn(conversation, 0, None)
        return None

    @property
    def exhausted(self) -> bool:
        """One pass only: every conversation was started and none has a turn left."""
        return not self._cycle and self._started_count >= len(self._delays_ns) and not self._active

    def take(self, conversation_index: int, turn_index: int) -> NextTurn | None:
        """Fixed schedules name the turn to send: it is ready when it is a first turn, or when its
        conversation's previous turn has returned (the trace's timestamp, not the delay, decides when)."""
        if turn_index == 0:
            return NextTurn(conversation_index, 0, None)
        for _, conversation, turn in self._ready:
            if (conversation, turn) == (conversation_index, turn_index):
                return NextTurn(conversation, turn, self._active[conversation])
        return None

    def next_ready_ns(self) -> int | None:
        """When the earliest waiting turn becomes ready (None when none waits)."""
        return self._ready[0][0] if self._ready else None

    def started(self, turn: NextTurn, worker_id: str) -> None:
        """`turn` (as returned by `next_ready`) was issued to `worker_id`."""
        if turn.turn_index == 0:
            self._started_count += 1
            self._next_new = (turn.conversation_index + 1) % len(self._delays_ns)
            if len(self._delays_ns[turn.conversation_index]) > 1:
                self._active[turn.conversation_index] = worker_id
        else:
            self._ready.remove(next(i for i in self._ready if i[1:] == (turn.conversation_index, turn.turn_index)))
            heapq.heapify(self._ready)

    def finished(self, conversation_index: int, turn_index: int, now_ns: int) -> None:
        """A turn's credit came back: schedule the conversation's next turn, or end it."""
        if conversation_index not in self._active:
            return
        delays = self._delays_ns[conversation_index]
        if turn_index + 1 < len(delays):
            heapq.heappush(self._ready, (now_ns + delays[turn_index + 1], conversation_index, turn_index + 1))
        else:
            del self._active[conversation_index]

    def abandon(self, conversation_index: int) -> None:
        """Its worker was lost: the conversation's history is gone, so its remaining turns are skipped."""
        self._active.pop(conversation_index, None)
        self._ready = [item for item in self._ready if item[1] != conversation_index]
        heapq.heapify(self._ready)
