"""Chunk and piece vectors of a mean-pooling sentence-transformers model from one pass.

Most sentence-transformers models (all-MiniLM-L6-v2 among them) are "Transformer ->
Pooling(mean) [-> Normalize]": the sentence vector is the mean of the transformer's token
embeddings. So one forward pass over a chunk gives the chunk vector (the mean of all its
tokens, exactly what ``encode_document`` computes) and, by averaging the tokens of each
piece's character span, an in-context vector for every piece: half the encoder work of
encoding the pieces again on their own.

torch and sentence-transformers are imported only when a model is used, as in
:mod:`qa.encode.sentence_transformers`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..types import Span
from .base import normalised

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


# Candidates for the document prompt, in the order SentenceTransformer.encode_document tries them.
_DOCUMENT_PROMPTS = ("document", "passage", "corpus")


def token_poolable(st: SentenceTransformer) -> bool:
    """Whether ``st`` (a loaded SentenceTransformer) can be pooled token by token here.

    That is: a plain text Transformer with a fast tokenizer (for character offsets), mean
    pooling and nothing after it but Normalize, no document prompt (its tokens would be in
    every chunk's mean) and no per-call or per-task length overrides.
    """
    modules = list(st)
    names = [type(m).__name__ for m in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return False
    transformer, pooling = modules[0], modules[1]
    tokenizer = getattr(transformer, "tokenizer", None)
    return (getattr(tokenizer, "is_fast", False)
            and getattr(transformer, "transformer_task", "feature-extraction") == "feature-extraction"
            and not getattr(transformer, "processing_kwargs", None)
            and getattr(transformer, "document_length", None) is None
            and isinstance(st.max_seq_length, int)
            and _mean_pooling_only(pooling.get_config_dict())
            and not _document_prompt(st))


def _mean_pooling_only(config: dict[str, Any]) -> bool:
    if "pooling_mode" in config:  # sentence-transformers 6 names the mode(s)
        mode = config["pooling_mode"]
        return mode == "mean" or list(mode) == ["mean"]
    # sentence-transformers 5 has one flag per mode
    return [k for k, on in config.items() if k.startswith("pooling_mode_") and on] == ["pooling_mode_mean_tokens"]


def _document_prompt(st: SentenceTransformer) -> str:
    """The prompt ``encode_document`` would prepend (empty for none)."""
    prompts = getattr(st, "prompts", None) or {}
    for name in _DOCUMENT_PROMPTS:
        if name in prompts:
            return prompts[name] or ""
    default = getattr(st, "default_prompt_name", None)
    return (prompts.get(default) or "") if default else ""


@dataclass(frozen=True)
class _Window:
    """One forward-pass input: token ids with the model's special tokens, the chunk it
    belongs to, and per token the global index of its piece (-1: none)."""

    ids: list[int]
    chunk: int
    pieces: list[int]


class TokenPooledSentenceEncoder:
    """One forward pass per chunk gives the chunk vector and in-context piece vectors.

    Chunk vector: the mean of all the chunk's token embeddings, [CLS]/[SEP] (or the model's
    own special tokens) included, as sentence-transformers' mean pooling counts them; for a
    chunk within ``max_seq_length`` tokens it equals ``encode_passages([chunk])``. Piece
    vector: the mean of the token embeddings whose first character falls in the piece's
    span, computed in the chunk's context.

    Long chunks: sentence-transformers truncates a text to ``max_seq_length`` tokens (256
    for MiniLM), so the tail of a 1500-character chunk (MiniLM: a median 352 tokens on the
    Spanish XQuAD-R articles, 245 on the English ones) would be in no vector at all and its
    pieces in no context. Here such a chunk is split into consecutive windows of at most
    ``max_seq_length`` tokens (special tokens included), cut at piece boundaries where one
    is near the balanced cut, else inside a piece at a token boundary; each window is run on
    its own and the chunk vector is the mean over all windows' tokens. It covers the whole
    chunk, so for a long chunk it differs from ST's vector of the truncated text, by design
    (a question about the tail finds the chunk); a piece cut between two windows pools its
    tokens from both.

    A piece without tokens of its own (nothing the tokenizer keeps) is encoded alone.
    """

    #: Windows per forward pass, sorted by length as sentence-transformers does (its
    #: default batch size): little padding, bounded memory.
    BATCH = 32

    def __init__(self, embedder) -> None:  # a qa.encode.sentence_transformers.SentenceTransformerEmbedder
        self.embedder = embedder

    def encode(self, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        dimension = self.embedder.dimension
        n_pieces = sum(len(s) for s in spans)
        if not texts:
            return np.empty((0, dimension), np.float32), np.empty((0, dimension), np.float32)
        st = self.embedder.backend()
        windows = self._windows(st, texts, spans)
        chunk_sums = np.zeros((len(texts), dimension), dtype=np.float32)
        piece_sums = np.zeros((n_pieces, dimension), dtype=np.float32)
        chunk_tokens = np.zeros(len(texts), dtype=np.int64)
        piece_tokens = np.zeros(n_pieces, dtype=np.int64)
        order = sorted(range(len(windows)), key=lambda w: -len(windows[w].ids))
        st.eval()
        with torch.inference_mode(), self.embedder.precision(len(texts)):
            for i in range(0, len(order), self.BATCH):
                batch = [windows[w] for w in order[i:i + self.BATCH]]
                tokens = self._token_embeddings(st, batch)  # [all tokens of the batch, dimension]
                chunk_of = np.repeat([w.chunk for w in batch], [len(w.ids) for w in batch])
                piece_of = np.fromiter((p for w in batch for p in w.pieces), dtype=np.int64, count=len(tokens))
                in_piece = piece_of >= 0
                _add_runs(chunk_sums, chunk_of, tokens)
                _add_runs(piece_sums, piece_of[in_piece], tokens[in_piece])
                chunk_tokens += np.bincount(chunk_of, minlength=len(texts))
                piece_tokens += np.bincount(piece_of[in_piece], minlength=n_pieces)
        empty = np.flatnonzero(piece_tokens == 0)
        if len(empty):
            texts_of = [text[a:b] for text, own in zip(texts, spans) for a, b in own]
            piece_sums[empty] = self.embedder.encode_passages([texts_of[p] for p in empty])
            piece_tokens[empty] = 1
        return normalised(chunk_sums / chunk_tokens[:, None]), normalised(piece_sums / piece_tokens[:, None])

    @staticmethod
    def _windows(st: SentenceTransformer, texts: Sequence[str], spans: Sequence[Sequence[Span]]) -> list[_Window]:
        """Tokenise each chunk once and cut it into windows that fit the model."""
        encoded = st.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False,
                               return_offsets_mapping=True, return_special_tokens_mask=True)
        windows: list[_Window] = []
        first_piece = 0
        for i, own in enumerate(spans):
            ids, special = encoded["input_ids"][i], encoded["special_tokens_mask"][i]
            head = next((k for k, s in enumerate(special) if not s), len(ids))
            tail = next((k for k, s in enumerate(reversed(special)) if not s), 0) if head < len(ids) else 0
            content = ids[head:len(ids) - tail]
            starts = [start for start, _ in encoded["offset_mapping"][i][head:len(ids) - tail]]
            piece_starts = [a for a, _ in own]
            pieces = []
            for start in starts:
                j = bisect.bisect_right(piece_starts, start) - 1
                pieces.append(first_piece + j if j >= 0 and start < own[j][1] else -1)
            boundaries = sorted({bisect.bisect_left(starts, a) for a in piece_starts})
            prefix, suffix = ids[:head], ids[len(ids) - tail:]
            budget = max(1, st.max_seq_length - head - tail)
            for a, b in window_cuts(len(content), boundaries, budget):
                windows.append(_Window(prefix + content[a:b] + suffix, i,
                                       [-1] * head + pieces[a:b] + [-1] * tail))
            first_piece += len(own)
        return windows

    @staticmethod
    def _token_embeddings(st: SentenceTransformer, batch: list[_Window]) -> np.ndarray:
        """The transformer's token embeddings of ``batch``, concatenated window by window."""
        import torch

        tokenizer = st.tokenizer
        length = max(len(w.ids) for w in batch)
        ids = torch.full((len(batch), length), tokenizer.pad_token_id or 0, dtype=torch.long)
        mask = torch.zeros((len(batch), length), dtype=torch.long)
        for row, window in enumerate(batch):  # padded on the right, as encoder models' tokenizers pad
            ids[row, :len(window.ids)] = torch.tensor(window.ids, dtype=torch.long)
            mask[row, :len(window.ids)] = 1
        features = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in tokenizer.model_input_names:
            features["token_type_ids"] = torch.zeros_like(ids)
        features = {name: value.to(st.device) for name, value in features.items()}
        embeddings = st[0](features)["token_embeddings"]
        return embeddings[features["attention_mask"].bool()].float().cpu().numpy()


def _add_runs(sums: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> None:
    """``sums[labels[i]] += rows[i]`` for ``labels`` that come in runs (a window's tokens,
    a piece's tokens): one reduceat over the runs, then an ``add.at`` of a row per run
    (an ``add.at`` of every token took 3% of a MiniLM build)."""
    if len(labels) == 0:
        return
    starts = np.flatnonzero(np.concatenate([[True], labels[1:] != labels[:-1]]))
    np.add.at(sums, labels[starts], np.add.reduceat(rows, starts, axis=0))


def window_cuts(n: int, boundaries: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """Consecutive ``[a, b)`` token ranges of at most ``budget`` tokens covering ``range(n)``.

    Each cut is the piece boundary (a token index in ``boundaries``, sorted) nearest to the
    balanced cut among those that keep the fewest windows possible; failing that, the last
    boundary in reach; failing that (one piece longer than a window), ``budget`` tokens on.
    Balanced cuts keep the last window from being a few tokens with hardly any context, as a
    greedy fill would leave it.
    """
    cuts, start = [], 0
    while n - start > budget:
        windows = -(-(n - start) // budget)
        target = start + (n - start) // windows
        reach = start + budget
        inside = boundaries[bisect.bisect_right(boundaries, start):bisect.bisect_right(boundaries, reach)]
        fewest = [b for b in inside if b >= n - (windows - 1) * budget]
        end = min(fewest, key=lambda b: abs(b - target)) if fewest else (inside[-1] if inside else reach)
        cuts.append((start, end))
        start = end
    cuts.append((start, n))
    return cuts

