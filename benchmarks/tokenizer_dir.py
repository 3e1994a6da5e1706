"""A local Hugging Face tokenizer directory for the peers, which need one offline.

AIPerf and `vllm bench serve` load a tokenizer through `transformers` by name or path; no model hub is
reachable here, so a byte-level BPE is trained on the bundled corpus and saved in the HF layout
(`tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`). Built once; the directory is
written under a temporary name and renamed, so an interrupted build never leaves half a tokenizer.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

VOCAB_SIZE = 4000
MODEL_MAX_LENGTH = 8192
_MAKE_TINY_LLAMA = Path(__file__).resolve().parents[1] / "scripts" / "make_tiny_llama.py"


def ensure_tokenizer_dir(corpus: Path, out_dir: Path) -> Path:
    """Return `out_dir`, building it from `corpus` first when it holds no `tokenizer.json`."""
    if (out_dir / "tokenizer.json").is_file():
        return out_dir
    building = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    # The same HF-layout tokenizer the real-vLLM tests build (scripts/ is not a package: load it by path).
    spec = importlib.util.spec_from_file_location("make_tiny_llama", _MAKE_TINY_LLAMA)
    assert spec is not None and spec.loader is not None
    make_tiny_llama = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_tiny_llama)
    make_tiny_llama.train_tokenizer(corpus, building, vocab_size=VOCAB_SIZE, model_max_length=MODEL_MAX_LENGTH)
    shutil.rmtree(out_dir, ignore_errors=True)
    building.rename(out_dir)
    return out_dir
