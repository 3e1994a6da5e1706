"""Validation of request bodies (generation and embeddings), with the status codes and messages vLLM
answers. Prompt tokens are counted as whitespace-separated words: the mock has no tokenizer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

Endpoint = Literal["chat", "completions", "embeddings"]
"""The endpoints that do work and are counted in the truth."""
EndpointKind = Literal["chat", "completions"]
"""The generation endpoints."""
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
    """What the mock needs from a request body to shape its answer and log it.

    `requested_tokens` is what the body asked for (None: the server default applies).
    `messages_count` is the number of chat messages (None for completions). `last_user_text` is the
    text of the last user message (chat) or the prompt (completions; the first string of a list)."""

    kind: EndpointKind
    model: str
    output_tokens: int
    finish_reason: FinishReason
    prompt_tokens: int
    stream: bool
    include_usage: bool
    requested_tokens: int | None
    messages_count: int | None
    last_user_text: str


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    """An embeddings body: one input text per embedding wanted, in order."""

    model: str
    inputs: list[str]
    prompt_tokens: int


def parse_generation_request(
    kind: EndpointKind, body: bytes, model_names: list[str], default_output_tokens: int
) -> GenerationRequest:
    """Decode and check one body.

    Raises `InvalidRequest`: 400 for bad JSON or missing/ill-typed fields, 404 for an unknown model.
    A request without a model gets the first served model, as vLLM does.
    """
    data = _decode(body)
    model = _model(data, model_names)

    requested = _optional_positive_int(data, "max_completion_tokens")
    if requested is None:
        requested = _optional_positive_int(data, "max_tokens")

    stream = data.get("stream")
    if stream is None:
        stream = False
    elif not isinstance(stream, bool):
        raise _bad_request("'stream' must be a boolean")

    if kind == "chat":
        messages = _chat_messages(data)
        prompt_tokens = _chat_prompt_tokens(messages)
        messages_count: int | None = len(messages)
        last_user_text = _last_user_text(messages)
    else:
        prompt_tokens = _completion_prompt_tokens(data)
        messages_count = None
        last_user_text = _first_string(data["prompt"])

    return GenerationRequest(
        kind=kind,
        model=model,
        output_tokens=default_output_tokens if requested is None else requested,
        finish_reason="stop" if requested is None else "length",
        prompt_tokens=prompt_tokens,
        stream=stream,
        include_usage=stream and _include_usage(data),
        requested_tokens=requested,
        messages_count=messages_count,
        last_user_text=last_user_text,
    )


def parse_embeddings_request(body: bytes, model_names: list[str]) -> EmbeddingsRequest:
    """Decode and check an embeddings body: `input` is a non-empty string or a non-empty list of them.

    Only float vectors are served: an `encoding_format` other than "float" is refused. Raises
    `InvalidRequest` as `parse_generation_request` does.
    """
    data = _decode(body)
    model = _model(data, model_names)
    raw = data.get("input")
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(item, str) for item in raw):
        inputs = list(raw)
    else:
        raise _bad_request("'input' must be a string or a non-empty list of strings")
    encoding_format = data.get("encoding_format")
    if encoding_format not in (None, "float"):
        raise _bad_request(f"'encoding_format' {encoding_format!r} is not supported; use 'float'")
    return EmbeddingsRequest(model=model, inputs=inputs, prompt_tokens=sum(len(text.split()) for text in inputs))


def _decode(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"Invalid JSON body: {exc}") from exc
    if not isinstance(data, dict):
        raise _bad_request("Request body must be a JSON object")
    return data


def _model(data: dict[str, Any], model_names: list[str]) -> str:
    model = data.get("model")
    if model is None:
        return model_names[0]
    if not isinstance(model, str):
        raise _bad_request("'model' must be a string")
    if model not in model_names:
        raise InvalidRequest(404, f"The model `{model}` does not exist.", "NotFoundError")
    return model


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


def _chat_messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad_request("'messages' must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict):
            raise _bad_request("Each message must be an object")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad_request("Message 'content' must be a string or a list of parts")
    return messages


def _chat_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Words across all message contents; text parts of multi-part contents count, other parts don't."""
    return sum(len(_message_text(message).split()) for message in messages)


def _message_text(message: dict[str, Any]) -> str:
    """A message's text: its string content, or its text parts joined with spaces."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)]
        return " ".join(texts)
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _message_text(message)
    return ""


def _first_string(prompt: str | list[Any]) -> str:
    if isinstance(prompt, str):
        return prompt
    return next((item for item in prompt if isinstance(item, str)), "")


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
