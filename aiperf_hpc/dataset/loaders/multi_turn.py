"""`--custom-dataset-type multi_turn`: one conversation per JSONL line (AIPerf's multi-turn format).

A line: `{"session_id": "chat-1", "turns": [{"text": "Hi", "output_length": 50}, {"text": "More?",
"delay": 2000}]}`. A turn takes the fields of a single-turn line except `session_id`; its `delay` (ms)
is the pause after the previous turn's answer, its `timestamp` (ms) a fixed send time. As in AIPerf,
lines sharing a `session_id` are one conversation: their turns are appended in file order, and the
conversation keeps the position of its first line.
"""

from __future__ import annotations

from pathlib import Path

from aiperf_hpc.dataset.loaders.common import Fields, TokenCounter, iter_jsonl
from aiperf_hpc.dataset.loaders.single_turn import FIELDS as SINGLE_TURN_FIELDS
from aiperf_hpc.dataset.loaders.single_turn import read_turn
from aiperf_hpc.protocol.messages import Conversation, Turn

LINE_FIELDS = frozenset({"type", "session_id", "turns"})
TURN_FIELDS = SINGLE_TURN_FIELDS - {"session_id"}


def load_multi_turn(path: Path, *, tokenizer: TokenCounter) -> list[Conversation]:
    """The file's conversations indexed from 0; a line without `session_id` is a conversation of its
    own, named "session-<index>".
    `input_tokens_target` of a turn counts its own prompt, not the history sent with it.
    Raises UsageError (one line, naming file and line) for any bad input."""
    conversations: list[tuple[str | None, list[tuple[Fields, Turn]]]] = []
    position_of: dict[str, int] = {}  # session_id -> its position in `conversations`
    for fields in iter_jsonl(path):
        fields.check_names(LINE_FIELDS, "multi_turn lines")
        fields.check_type("multi_turn")
        raw_turns = fields.data.get("turns")
        if raw_turns is None:
            raise fields.error("'turns' is missing")
        if not isinstance(raw_turns, list) or not raw_turns:
            raise fields.error("'turns' must be a non-empty list of turns")
        turns: list[tuple[Fields, Turn]] = []
        for number, raw_turn in enumerate(raw_turns, start=1):
            if not isinstance(raw_turn, dict):
                raise fields.error(f"turn {number} must be a JSON object")
            turn_fields = fields.within(f"turn {number}", raw_turn)
            turns.append((turn_fields, read_turn(turn_fields, tokenizer, "multi_turn turns", TURN_FIELDS)))
        session_id = fields.optional_str("session_id")
        if session_id is not None and session_id in position_of:
            conversations[position_of[session_id]][1].extend(turns)
            continue
        if session_id is not None:
            position_of[session_id] = len(conversations)
        conversations.append((session_id, turns))

    for _, turns in conversations:
        _check_turn_order(turns)
    return [
        Conversation(index=index, session_id=session_id or f"session-{index}", turns=[turn for _, turn in turns])
        for index, (session_id, turns) in enumerate(conversations)
    ]


def _check_turn_order(turns: list[tuple[Fields, Turn]]) -> None:
    """A turn is sent after the previous turn's answer, so its timestamp cannot be earlier."""
    previous_ms: float | None = None
    for fields, turn in turns:
        if turn.timestamp_ms is None:
            continue
        if previous_ms is not None and turn.timestamp_ms < previous_ms:
            raise fields.error("'timestamp' is earlier than a previous turn's of the same conversation")
        previous_ms = turn.timestamp_ms
