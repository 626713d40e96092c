"""Writes Fuzz/Corpus/FuzzTokenizer: seeds of the form FuzzTokenizer reads (a 2-byte
little-endian vocab length, the vocab.txt bytes, the caption bytes), from a small excerpt of
bert-base-uncased's vocab.txt and a few captions that exercise each rule of the tokenizer.

    python3 Fuzz/make_tokenizer_corpus.py Checkpoints/pretrained/bert-base-uncased-vocab.txt
"""
import os
import struct
import sys

WORDS = ["a", "photo", "of", "the", "an", "ankle", "boot", "bag", "shirt", "cafe", "naive", "##s", "##ing",
         "##ly", "un", "##aff", "##able", "σ", "ς", "ο", "##ς", "北", "京", "東", "タ", "##ワ", "ー"]

CAPTIONS = [
    b"a photo of an ankle boot",
    "Na\u00efve CAF\u00c9 \u2014 \u039f\u03a3 \u03a3!!".encode(),            # accents, Greek final sigma
    "\u5317\u4eac\u6771\u4eac\u30bf\u30ef\u30fc \ud55c\uad6d\uc5b4".encode(),  # CJK, kana, Hangul
    "zero\u200bwidth\u00a0nbsp\u3000ideographic\ttab\r\nline \U0001F600".encode(),
    "e\u0301\u0301 a\u0000b \ufffd".encode(),                                  # combining marks, NUL, U+FFFD
    b"unaffable " + b"x" * 101 + b" ...,,;;" + b"!" * 40,                    # [UNK], long word, past 77 tokens
    b"\xff\xfe bad \xc0\xaf overlong \xed\xa0\x80 surrogate \xf4\x90\x80\x80 past U+10FFFF \xe2\x82",
]


def main(vocab_path):
    tokens = open(vocab_path, encoding="utf-8").read().split("\n")
    keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    keep += [t for t in tokens if len(t) == 1 and t.isascii() and t.isprintable()]
    keep += ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    keep += [w for w in WORDS if w in tokens and w not in keep]
    lf = ("\n".join(keep) + "\n").encode()
    crlf = ("\r\n".join(keep[:40]) + "\r\n").encode()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus", "FuzzTokenizer")
    os.makedirs(out, exist_ok=True)
    for i, caption in enumerate(CAPTIONS):
        vocab = crlf if i == 1 else lf
        with open(os.path.join(out, f"seed-{i}"), "wb") as f:
            f.write(struct.pack("<H", len(vocab)) + vocab + caption)


if __name__ == "__main__":
    main(sys.argv[1])
