"""What every input-file loader shares: reading a file as UTF-8 text, walking JSONL lines, and typed
field access that turns each problem into one `UsageError` line naming the file and the line.

Conventions of every JSONL format: lines are numbered from 1 as an editor shows them; blank lines are
skipped; a field whose value is `null` counts as absent; a field the format does not know is an error
(a misspelt `output_lenght` must not silently change the benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from aiperf_hpc.errors import UsageError

_UTF8_BOM = b"\xef\xbb\xbf"
_INT64_MAX = 2**63 - 1  # entries cross the wire as JSON written by orjson, which stops at 64 bits
_SHOWN_VALUE_CHARS = 40


class TokenCounter(Protocol):
    """The part of the tokenizer the loaders use."""

    def count(self, text: str) -> int: ...


class PromptSource(Protocol):
    """The part of the prompt factory the loaders use: prompts of an exact token count."""

    def prompt(self, num_tokens: int) -> str: ...

    def prompt_for_hash_ids(self, hash_ids: Sequence[int], num_tokens: int) -> str: ...


def read_text(path: Path) -> str:
    """The file's content as text. A UTF-8 byte-order mark is dropped.

    Raises UsageError when the file is missing, unreadable or not UTF-8.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    skipped = len(_UTF8_BOM) if data.startswith(_UTF8_BOM) else 0
    try:
        return data[skipped:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start + skipped})") from None


def iter_jsonl(path: Path) -> Iterator[Fields]:
    """The JSON object of each non-blank line, in file order.

    Raises UsageError for an unreadable file, a line that is not JSON or not an object, and a file
    without a single entry ("FILE has no entries").
    """
    found = False
    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        found = True
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"{path}:{line_no}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(value, dict):
            raise UsageError(f"{path}:{line_no}: expected a JSON object, got {show(value)}")
        yield Fields(f"{path}:{line_no}", line_no, value)
    if not found:
        raise UsageError(f"{path} has no entries")


def show(value: Any) -> str:
    """A value as JSON, shortened for an error message."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[: _SHOWN_VALUE_CHARS - 3] + "..."


@dataclass(frozen=True)
class Fields:
    """One JSON object of an input file, with getters that check a field's type and raise UsageError
    prefixed by `where` (e.g. "data.jsonl:7" or "data.jsonl:7: turn 2")."""

    where: str
    line_no: int
    data: dict[str, Any]

    def error(self, message: str) -> UsageError:
        return UsageError(f"{self.where}: {message}")

    def within(self, where: str, data: dict[str, Any]) -> Fields:
        """A nested object (a turn of a conversation), reported as `self.where: where`."""
        return Fields(f"{self.where}: {where}", self.line_no, data)

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def check_names(self, allowed: Collection[str], kind: str) -> None:
        """Refuse a field outside `allowed`. `kind` names the format in the message ("single_turn lines")."""
        for name in self.data:
            if name not in allowed:
                raise self.error(f"unknown field {name!r} ({kind} take: {', '.join(sorted(allowed))})")

    def check_type(self, expected: str) -> None:
        """Accept an AIPerf-style `"type"` field only when it names this format."""
        value = self.data.get("type")
        if value is not None and value != expected:
            raise self.error(f"'type' is {show(value)} but the file is read as {expected}")

    def text(self) -> str:
        """The prompt: `text`, or the strings of `texts` joined by newlines. Never empty."""
        if self.has("text") and self.has("texts"):
            raise self.error("'text' and 'texts' cannot be used together")
        if self.has("texts"):
            texts = self.data["texts"]
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
                raise self.error(f"'texts' must be a non-empty list of strings, got {show(texts)}")
            joined = "\n".join(texts)
        else:
            joined = self.required_str("text")
        if not joined.strip():
            raise self.error("the prompt is empty")
        return joined

    def required_str(self, name: str) -> str:
        value = self.optional_str(name)
        if value is None:
            raise self.error(f"{name!r} is missing")
        return value

    def optional_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, str):
            raise self.error(f"{name!r} must be a string, got {show(value)}")
        return value

    def required_positive_int(self, name: str) -> int:
        value = self.optional_positive_int(name)
        if value is None:
            raise self.error(f"{name!r} is missing")
        return value

    def optional_positive_int(self, name: str) -> int | None:
        """An integer >= 1; a float with an integral value (`128.0`) is taken as that integer."""
        value = self.data.get(name)
        if value is None:
            return None
        number = _as_int(value)
        if number is None or number < 1:
            raise self.error(f"{name!r} must be a positive integer, got {show(value)}")
        return number

    def max_tokens(self) -> int | None:
        """The output length: `output_length`, or its alias `max_tokens`."""
        if self.has("output_length") and self.has("max_tokens"):
            raise self.error("'output_length' and 'max_tokens' cannot be used together")
        if self.has("max_tokens"):
            return self.optional_positive_int("max_tokens")
        return self.optional_positive_int("output_length")

    def optional_ms(self, name: str) -> float | None:
        """A finite, non-negative number of milliseconds."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise self.error(f"{name!r} must be a non-negative number of milliseconds, got {show(value)}")
        return float(value)

    def optional_int_list(self, name: str) -> list[int] | None:
        value = self.data.get(name)
        if value is None:
            return None
        numbers = [_as_int(item) for item in value] if isinstance(value, list) else [None]
        if any(number is None or number < 0 for number in numbers):
            raise self.error(f"{name!r} must be a list of non-negative integers, got {show(value)}")
        return [number for number in numbers if number is not None]


def check_timestamps(entries: Sequence[tuple[Fields, float | None]]) -> None:
    """A file that schedules its lines is replayed in file order, so either every line has a
    `timestamp` or none has, and timestamps never decrease. Raises UsageError naming the line."""
    first_timed = next((fields for fields, timestamp_ms in entries if timestamp_ms is not None), None)
    if first_timed is None:
        return
    previous_ms = 0.0
    for fields, timestamp_ms in entries:
        if timestamp_ms is None:
            raise fields.error(
                f"'timestamp' is missing, but line {first_timed.line_no} has one (give every line a timestamp or none)"
            )
        if timestamp_ms < previous_ms:
            raise fields.error(
                f"'timestamp' {_format_ms(timestamp_ms)} is before the previous line's {_format_ms(previous_ms)} "
                "(lines must be in time order)"
            )
        previous_ms = timestamp_ms


def _format_ms(value_ms: float) -> str:
    return str(int(value_ms)) if value_ms.is_integer() else str(value_ms)


def _as_int(value: Any) -> int | None:
    """`value` as an int when it is an integer (bools excluded) or an integral float of at most 64
    bits, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and abs(value) <= _INT64_MAX:
        return value
    return None
