"""Validation of generation request bodies, with the status codes and messages vLLM answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

EndpointKind = Literal["chat", "completions"]
FinishReason = Literal["length", "stop"]


class InvalidRequest(Exception):
    """A request the server refuses; becomes an OpenAI-style error body with `status`."""

    def __init__(self, status: int, message: str, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """What the mock needs from a request body to shape its answer."""

    model: str
    output_tokens: int
    finish_reason: FinishReason
    prompt_tokens: int
    stream: bool
    include_usage: bool


def parse_generation_request(
    kind: EndpointKind, body: bytes, model_names: list[str], default_output_tokens: int
) -> GenerationRequest:
    """Decode and check one body.

    Raises `InvalidRequest`: 400 for bad JSON or missing/ill-typed fields, 404 for an unknown model.
    A request without a model gets the first served model, as vLLM does.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"Invalid JSON body: {exc}") from exc
    if not isinstance(data, dict):
        raise _bad_request("Request body must be a JSON object")

    model = data.get("model")
    if model is None:
        model = model_names[0]
    elif not isinstance(model, str):
        raise _bad_request("'model' must be a string")
    elif model not in model_names:
        raise InvalidRequest(404, f"The model `{model}` does not exist.", "NotFoundError")

    requested = _optional_positive_int(data, "max_completion_tokens")
    if requested is None:
        requested = _optional_positive_int(data, "max_tokens")

    stream = data.get("stream")
    if stream is None:
        stream = False
    elif not isinstance(stream, bool):
        raise _bad_request("'stream' must be a boolean")

    prompt_tokens = _chat_prompt_tokens(data) if kind == "chat" else _completion_prompt_tokens(data)

    return GenerationRequest(
        model=model,
        output_tokens=default_output_tokens if requested is None else requested,
        finish_reason="stop" if requested is None else "length",
        prompt_tokens=prompt_tokens,
        stream=stream,
        include_usage=stream and _include_usage(data),
    )


def _bad_request(message: str) -> InvalidRequest:
    return InvalidRequest(400, message, "BadRequestError")


def _optional_positive_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad_request(f"'{key}' must be a positive integer, got {value!r}")
    return value


def _include_usage(data: dict[str, Any]) -> bool:
    options = data.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise _bad_request("'stream_options' must be an object")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise _bad_request("'stream_options.include_usage' must be a boolean")
    return include_usage


def _chat_prompt_tokens(data: dict[str, Any]) -> int:
    """Words across all message contents; text parts of multi-part contents count, other parts don't."""
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad_request("'messages' must be a non-empty list")
    words = 0
    for message in messages:
        if not isinstance(message, dict):
            raise _bad_request("Each message must be an object")
        content = message.get("content")
        if isinstance(content, str):
            words += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    words += len(part["text"].split())
        elif content is not None:
            raise _bad_request("Message 'content' must be a string or a list of parts")
    return words


def _completion_prompt_tokens(data: dict[str, Any]) -> int:
    """Words of a string prompt or a list of them; a token-id prompt counts one token per id."""
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        return len(prompt.split())
    if isinstance(prompt, list) and prompt:
        words = 0
        for item in prompt:
            if isinstance(item, str):
                words += len(item.split())
            elif isinstance(item, int) and not isinstance(item, bool):
                words += 1
            elif isinstance(item, list) and all(isinstance(i, int) for i in item):
                words += len(item)
            else:
                raise _bad_request("'prompt' list items must be strings or token ids")
        return words
    raise _bad_request("'prompt' must be a string or a non-empty list")
