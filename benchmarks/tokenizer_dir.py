"""A local Hugging Face tokenizer directory for the peers, which need one offline.

AIPerf and `vllm bench serve` load a tokenizer through `transformers` by name or path; no model hub is
reachable here, so a byte-level BPE is trained on the bundled corpus and saved in the HF layout
(`tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`). Built once; the directory is
written under a temporary name and renamed, so an interrupted build never leaves half a tokenizer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

BOS = "<s>"
EOS = "</s>"
VOCAB_SIZE = 4000
# A plain role-tagged template, for peers that render chat messages through the tokenizer.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{{ eos_token }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def ensure_tokenizer_dir(corpus: Path, out_dir: Path) -> Path:
    """Return `out_dir`, building it from `corpus` first when it holds no `tokenizer.json`."""
    if (out_dir / "tokenizer.json").is_file():
        return out_dir
    building = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train([str(corpus)], trainer)
    tokenizer.save(str(building / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 8192,
        "chat_template": CHAT_TEMPLATE,
    }
    (building / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"bos_token": BOS, "eos_token": EOS, "pad_token": EOS}
    (building / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    shutil.rmtree(out_dir, ignore_errors=True)
    building.rename(out_dir)
    return out_dir
