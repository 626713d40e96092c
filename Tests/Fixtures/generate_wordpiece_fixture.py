"""Token ids that transformers' BertTokenizer (bert-base-uncased, uncased) gives for tricky
captions, padded/truncated to 77 as the reference's BERTTokenizer asks for.

The ids are those of the pure-Python BertTokenizer (transformers 5 names it
BertTokenizerLegacy); each case records whether the Rust-backed BertTokenizer (the
reference's BertTokenizerFast) agrees.

usage: python generate_wordpiece_fixture.py Checkpoints/pretrained/bert-base-uncased-vocab.txt \
           Tests/ModelsTests/Fixtures/wordpiece_bert_base_uncased.json
"""
import json
import sys

from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

CASES = [
    "a photo of an ankle boot",
    "A PICTURE of a T-shirt/top!!!",
    "",
    "   \t\n  ",
    "Café crème brûlée, naïve façade; Ångström.",
    "Ελληνικά ΟΔΟΣ",
    "北京欢迎你 and 東京",
    "日本語のテキストと한국어",
    "wait... what?!?! (really) [yes] {no} <maybe> $100 #1 @home ^_^ ~~ `quote`",
    "“curly quotes” — em-dash – en-dash … ellipsis «guillemets»",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 120,
    "antidisestablishmentarianism" * 4,
    "unaffable ungoogleable zxqvj",
    "emoji 🙂👍🏽 and symbols ★ ♥ ©",
    "control\u0000chars\u200bzero\ufeffwidth\u00adsoft",
    "tab\tnew\nline\r\nreturn\u00a0nbsp\u3000ideographic",
    "e\u0301 vs \u00e9 and n\u0303",
    "İstanbul ǅemal ß straße ﬁne",
    " ".join(f"word{i}" for i in range(90)),
    "the quick brown fox jumps over the lazy dog " * 12,
]


def main(vocab_path, out_path):
    slow = BertTokenizerLegacy(vocab_file=vocab_path, do_lower_case=True)
    fast = BertTokenizer(vocab=vocab_path, do_lower_case=True)
    cases = []
    for text in CASES:
        enc = slow(text, truncation=True, max_length=77, padding="max_length")
        full = slow(text)["input_ids"]
        fast_ids = fast(text, truncation=True, max_length=77, padding="max_length")["input_ids"]
        cases.append({"text": text, "pieces": slow.tokenize(text), "ids": enc["input_ids"],
                      "length": sum(enc["attention_mask"]), "truncated": len(full) > 77,
                      "fast_tokenizer_agrees": fast_ids == enc["input_ids"]})
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"vocab": "bert-base-uncased vocab.txt (30522 tokens)", "context_length": 77,
                   "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
