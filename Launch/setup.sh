#!/usr/bin/env bash
# Installs the system libraries the product needs (Debian packages) and builds it.
# Idempotent: packages already present are not reinstalled, the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev libdnnl-dev libopenmpi-dev openmpi-bin libzstd-dev zlib1g-dev libpng-dev
          pkg-config dataset-fashion-mnist)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Pretrained LPIPS weights for the perceptual loss, converted once.
./Launch/fetch_lpips_weights.sh
# bert-base-uncased's WordPiece vocabulary for the text conditioner.
./Launch/fetch_bert_vocab.sh

if [ "${LDM_SETUP_SKIP_BUILD:-0}" != "1" ]; then
  echo "setup: building (release)"
  swift build -c release
fi
