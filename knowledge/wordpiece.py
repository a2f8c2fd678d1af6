"""BERT's uncased WordPiece tokenizer (what ``BertTokenizer`` does for all-MiniLM-L6-v2), from its ``vocab.txt``.

Basic step: clean control characters, put spaces around CJK characters, lower-case, strip accents, split on
whitespace and punctuation. Then each word is cut greedily into the longest pieces found in the vocabulary
(continuations prefixed ``##``); a word that cannot be cut becomes ``[UNK]``.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

MAX_WORD_CHARS = 100


def _is_cjk(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _clean(text: str) -> str:
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
            continue
        if _is_cjk(cp):
            out += [" ", ch, " "]
        elif ch.isspace():
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def basic_tokens(text: str) -> list[str]:
    words = []
    for word in _clean(text).split():
        word = "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in word:
            if _is_punctuation(ch):
                if current:
                    words.append(current)
                words.append(ch)
                current = ""
            else:
                current += ch
        if current:
            words.append(current)
    return words


class WordPiece:
    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab
        self.unk, self.cls, self.sep, self.pad = (vocab[t] for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"))

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls({token: i for i, token in enumerate(lines)})

    def _pieces(self, word: str) -> list[int]:
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk]
            start = end
        return ids

    def encode(self, text: str, max_length: int) -> list[int]:
        """``[CLS] pieces... [SEP]``, the pieces truncated to fit ``max_length``."""
        ids = [i for word in basic_tokens(text) for i in self._pieces(word)]
        return [self.cls, *ids[:max_length - 2], self.sep]
