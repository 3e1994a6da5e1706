"""`--custom-dataset-type single_turn`: one request per JSONL line (AIPerf's single-turn format).

A line: `{"text": "...", "output_length": 128, "timestamp": 0, "session_id": "a"}`, where `texts`
(a list of strings, joined by newlines) may replace `text`, `max_tokens` is an alias of
`output_length`, `timestamp` (ms from the start of the run, for a fixed schedule) and `delay` (ms)
exclude each other. Every line becomes a conversation of one turn; lines may share a `session_id`.
"""

from __future__ import annotations

from pathlib import Path

from aiperf_hpc.dataset.loaders.common import Fields, TokenCounter, check_timestamps, iter_jsonl
from aiperf_hpc.protocol.messages import Conversation, Turn

FIELDS = frozenset({"type", "text", "texts", "output_length", "max_tokens", "timestamp", "delay", "session_id"})


def load_single_turn(path: Path, *, tokenizer: TokenCounter) -> list[Conversation]:
    """The file's lines as one-turn conversations indexed from 0; `input_tokens_target` is the
    prompt's token count. Raises UsageError (one line, naming file and line) for any bad input."""
    parsed: list[tuple[Fields, Turn, str | None]] = []
    for fields in iter_jsonl(path):
        parsed.append((fields, read_turn(fields, tokenizer, "single_turn lines"), fields.optional_str("session_id")))
    check_timestamps([(fields, turn.timestamp_ms) for fields, turn, _ in parsed])
    return [
        Conversation(index=index, session_id=session_id or f"session-{index}", turns=[turn])
        for index, (_, turn, session_id) in enumerate(parsed)
    ]


def read_turn(fields: Fields, tokenizer: TokenCounter, kind: str, allowed: frozenset[str] = FIELDS) -> Turn:
    """One turn of the single-turn or multi-turn format. `kind` names the object in errors about
    unknown fields ("single_turn lines", "multi_turn turns")."""
    fields.check_names(allowed, kind)
    fields.check_type("single_turn")
    prompt = fields.text()
    timestamp_ms = fields.optional_ms("timestamp")
    delay_ms = fields.optional_ms("delay")
    if timestamp_ms is not None and delay_ms is not None:
        raise fields.error("'timestamp' and 'delay' cannot be used together")
    return Turn(
        prompt=prompt,
        max_tokens=fields.max_tokens(),
        input_tokens_target=tokenizer.count(prompt),
        delay_ms=delay_ms,
        timestamp_ms=timestamp_ms,
    )
