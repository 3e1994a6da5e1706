"""The tokenizer that prompt lengths are measured in: the bundled one, a local `tokenizer.json`, or a
Hugging Face hub name.

The bundled tokenizer is a byte-level BPE (4,000 tokens) trained from the bundled corpus the first time
it is needed. Training is deterministic (same corpus and `tokenizers` recipe -> same tokenizer) and takes
well under a second, so no generated file is committed; the result is cached as JSON under the cache
directory, keyed by the corpus hash. A cache that cannot be written is not an error: the tokenizer is
then trained in memory on every load.

Only the HF `tokenizers` library (Rust) is used: no torch, no transformers. I/O: reads the corpus,
the cache, the given path, `AIPERF_HPC_CACHE_DIR` / `XDG_CACHE_HOME`, and the hub for a hub name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from pathlib import Path

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from aiperf_hpc.errors import UsageError

_CORPUS_RESOURCE = "corpus.txt"
_BUNDLED_VOCAB_SIZE = 4000
# Part of the cache key and the name: change it whenever the training recipe below changes.
_BUNDLED_STEM = "bpe-4k"
_TOKENIZER_FILE = "tokenizer.json"


class Tokenizer:
    """A loaded tokenizer and the name it was loaded by. Encoding never adds special tokens (BOS, EOS),
    never truncates and never pads, so `count` is the length of the text itself.

    Thread-safe for concurrent encode/decode calls (the Rust tokenizer is immutable once built).
    """

    __slots__ = ("_backend", "_name")

    def __init__(self, name: str, backend: tokenizers.Tokenizer) -> None:
        # Some tokenizer.json files ship truncation or padding settings, which would make counts lie.
        backend.no_truncation()
        backend.no_padding()
        self._name = name
        self._backend = backend

    @property
    def name(self) -> str:
        """`bundled:bpe-4k-<corpus sha256[:12]>`, or the path or hub name it was loaded from."""
        return self._name

    def encode(self, text: str) -> list[int]:
        return list(self._backend.encode(text, add_special_tokens=False).ids)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids and, for each, the `(begin, end)` character span of `text` it came from."""
        encoding = self._backend.encode(text, add_special_tokens=False)
        return list(encoding.ids), [(begin, end) for begin, end in encoding.offsets]

    def decode(self, ids: Sequence[int]) -> str:
        return self._backend.decode(list(ids), skip_special_tokens=True)

    def count(self, text: str) -> int:
        """The number of tokens `text` encodes to."""
        return len(self._backend.encode(text, add_special_tokens=False).ids)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """`count` of each text, encoded in parallel by the Rust library."""
        encodings = self._backend.encode_batch(list(texts), add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]

    def __repr__(self) -> str:
        return f"Tokenizer({self._name!r})"


def load_tokenizer(spec: str | None, *, cache_dir: Path | None = None) -> Tokenizer:
    """The tokenizer `spec` names.

    - None: the bundled tokenizer, cached under `cache_dir` (default: `default_cache_dir()`).
    - a directory holding `tokenizer.json` (the Hugging Face layout), or a path to such a file.
    - anything else: a Hugging Face hub name, fetched with `tokenizers.Tokenizer.from_pretrained`
      (needs a reachable hub, or the hub's local cache with `HF_HUB_OFFLINE=1`).

    Raises UsageError, with one line saying why, when the tokenizer cannot be loaded.
    """
    if spec is None:
        return _load_bundled(cache_dir if cache_dir is not None else default_cache_dir())
    file = local_tokenizer_file(spec)
    if file is not None:
        return Tokenizer(spec, _from_file(spec, file))
    try:
        backend = tokenizers.Tokenizer.from_pretrained(spec)
    except Exception as exc:  # hub, network and parse errors all come out of this one call
        raise UsageError(
            f"cannot load tokenizer {spec!r}: {_one_line(exc)}; pass a local directory with {_TOKENIZER_FILE}"
        ) from exc
    return Tokenizer(spec, backend)


def local_tokenizer_file(spec: str) -> Path | None:
    """The `tokenizer.json` that `spec` names as a local directory or file; None when `spec` is a hub
    name. Only looks at the file system. Raises UsageError for a local path without a tokenizer file."""
    path = Path(spec).expanduser()
    if path.is_dir():
        file = path / _TOKENIZER_FILE
        if not file.is_file():
            raise UsageError(f"cannot load tokenizer {spec!r}: the directory has no {_TOKENIZER_FILE}")
        return file
    if path.is_file():
        return path
    if spec.startswith((".", "/", "~")) or spec.endswith(".json"):
        raise UsageError(f"cannot load tokenizer {spec!r}: no such file or directory")
    return None


def default_cache_dir() -> Path:
    """`$AIPERF_HPC_CACHE_DIR`, else `$XDG_CACHE_HOME/aiperf-hpc`, else `~/.cache/aiperf-hpc`."""
    explicit = os.environ.get("AIPERF_HPC_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "aiperf-hpc"


@cache
def corpus_text() -> str:
    """The bundled English corpus that synthetic prompts are cut from; read once per process."""
    return files("aiperf_hpc.dataset").joinpath(_CORPUS_RESOURCE).read_text(encoding="utf-8")


def bundled_tokenizer_name() -> str:
    return f"bundled:{_bundled_key()}"


def _bundled_key() -> str:
    digest = hashlib.sha256(corpus_text().encode("utf-8")).hexdigest()
    return f"{_BUNDLED_STEM}-{digest[:12]}"


def _load_bundled(cache_dir: Path) -> Tokenizer:
    name = bundled_tokenizer_name()
    cached = cache_dir / f"{_bundled_key()}.json"
    try:
        return Tokenizer(name, tokenizers.Tokenizer.from_file(str(cached)))
    except Exception:  # missing, or unreadable by this `tokenizers` version: train afresh
        pass
    backend = _train_bundled()
    _write_atomically(cached, backend.to_str())
    return Tokenizer(name, backend)


def _train_bundled() -> tokenizers.Tokenizer:
    """Byte-level BPE trained on the corpus. The trainer breaks ties between equally frequent pairs by
    the pair itself, so the result does not depend on hash seeds or thread counts."""
    backend = tokenizers.Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BUNDLED_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    backend.train_from_iterator([corpus_text()], trainer=trainer)
    return backend


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a concurrent reader sees the old file, no file or the
    whole new one; racing writers write the same bytes. Gives up silently when the directory is not
    writable (the caller already holds the tokenizer)."""
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_name, 0o644)  # mkstemp makes it private; the cache may be shared by a group's jobs
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError:
        pass
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                Path(tmp_name).unlink()


def _from_file(spec: str, path: Path) -> tokenizers.Tokenizer:
    try:
        return tokenizers.Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust parser raises plain Exception
        raise UsageError(
            f"cannot load tokenizer {spec!r}: {path} is not a valid tokenizer file ({_one_line(exc)})"
        ) from exc


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
