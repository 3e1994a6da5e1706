"""`--public-dataset sharegpt --input-file FILE`: a local ShareGPT JSON file (nothing is downloaded).

The file is one JSON array of `{"id": "...", "conversations": [{"from": "human", "value": "..."},
{"from": "gpt", "value": "..."}, ...]}`. As `vllm bench serve` does, each item gives one request: the
first human (or user) message is the prompt, and the token count of the first gpt (or assistant)
message after it is `max_tokens`, so the server is asked for an answer as long as the recorded one.
Items with fewer than two messages, an empty prompt or no non-empty answer are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from aiperf_hpc.dataset.loaders.common import TokenCounter, read_text, show
from aiperf_hpc.errors import UsageError
from aiperf_hpc.protocol.messages import Conversation, Turn

_PROMPT_ROLES = frozenset({"human", "user"})
_ANSWER_ROLES = frozenset({"gpt", "assistant"})


@dataclass(frozen=True)
class ShareGptLoad:
    conversations: list[Conversation]
    skipped: int  # items examined but unusable (not counting those after the cap was reached)


def load_sharegpt(path: Path, *, tokenizer: TokenCounter, max_conversations: int | None = None) -> ShareGptLoad:
    """One-turn conversations from the file's items in file order, indexed from 0, at most
    `max_conversations` of them; session_id is the item's `id` (else "session-<index>").

    Raises UsageError for an unreadable file, invalid JSON, an item or message of the wrong shape
    (naming the item's 0-based position), and a file without a usable conversation.
    """
    try:
        document = orjson.loads(read_text(path))
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(document, list):
        raise UsageError(f"{path}: expected a JSON array of conversations (ShareGPT format), got {show(document)}")
    if not document:
        raise UsageError(f"{path} has no entries")

    conversations: list[Conversation] = []
    skipped = 0
    for position, item in enumerate(document):
        if max_conversations is not None and len(conversations) >= max_conversations:
            break
        exchange = _first_exchange(f"{path}: item [{position}]", item)
        answer_tokens = 0 if exchange is None else tokenizer.count(exchange[1])
        if exchange is None or answer_tokens < 1:
            skipped += 1
            continue
        prompt = exchange[0]
        index = len(conversations)
        item_id = item.get("id")
        conversations.append(
            Conversation(
                index=index,
                session_id=item_id if isinstance(item_id, str) and item_id else f"session-{index}",
                turns=[Turn(prompt=prompt, max_tokens=answer_tokens, input_tokens_target=tokenizer.count(prompt))],
            )
        )
    if not conversations:
        raise UsageError(f"no usable conversation in {path} ({skipped} skipped)")
    return ShareGptLoad(conversations, skipped)


def _first_exchange(where: str, item: Any) -> tuple[str, str] | None:
    """(prompt, recorded answer) of one item, or None when it has none to use."""
    if not isinstance(item, dict):
        raise UsageError(f"{where}: expected a JSON object, got {show(item)}")
    messages = item.get("conversations")
    if not isinstance(messages, list):
        raise UsageError(f"{where}: 'conversations' must be a list of messages, got {show(messages)}")
    if len(messages) < 2:
        return None
    prompt: str | None = None
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise UsageError(f"{where}: message {number} must be a JSON object, got {show(message)}")
        role, value = message.get("from"), message.get("value")
        if not isinstance(role, str) or not isinstance(value, str):
            raise UsageError(f"{where}: message {number} needs string 'from' and 'value' fields")
        if prompt is None and role in _PROMPT_ROLES:
            if not value.strip():
                return None
            prompt = value
        elif prompt is not None and role in _ANSWER_ROLES:
            return (prompt, value) if value.strip() else None
    return None
