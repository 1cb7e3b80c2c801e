"""The compact row codecs of the index format (qa.store.codecs) and the chunk text's deflate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qa.store.chunk_table import deflate_text, inflate_text
from qa.store.codecs import NGRAM_TERMS, WORD_TERMS, TermLayout, from_codes, pack_terms, to_codes, to_int8, unpack_terms
from qa.store.vectors.int8_rows import decode, int8_rows

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 8), hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=6).map(
    lambda shape: (shape[0], 8 * shape[1])), elements=finite))
def test_codes_restore_each_component_within_half_a_step(bits, vectors):
    packed, scales = to_codes(vectors, bits)
    assert packed.dtype == np.uint8 and packed.shape == (len(vectors), vectors.shape[1] * bits // 8)
    codes = from_codes(packed, bits)
    top = (1 << (bits - 1)) - 1
    assert codes.shape == vectors.shape and codes.min(initial=0) >= -top and codes.max(initial=0) <= top
    restored = codes.astype(np.float32) * scales[:, None]
    assert (np.abs(restored - vectors) <= scales[:, None] / 2 * (1 + 1e-5) + 1e-30).all()


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(2, 8), st.integers(0, 6), st.integers(1, 6))
def test_packing_is_lossless_for_codes(data, bits, rows, groups):
    top = (1 << (bits - 1)) - 1
    codes = data.draw(hnp.arrays(np.int8, (rows, 8 * groups), elements=st.integers(-top, top)))
    codes[:, 0] = top  # each row's largest magnitude is top: its scale is 1 and its codes are itself
    packed, scales = to_codes(codes.astype(np.float32), bits)
    assert np.array_equal(from_codes(packed, bits), codes) and np.allclose(scales, 1)


def test_quantised_unit_vectors_keep_their_cosines():
    vectors = np.random.default_rng(0).standard_normal((50, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codes, scales = to_int8(vectors)
    assert np.abs(np.sum(codes * scales[:, None] * vectors, axis=1) - 1).max() < 2e-3
    packed, scales = to_codes(vectors)
    assert np.abs(np.sum(from_codes(packed) * scales[:, None] * vectors, axis=1) - 1).max() < 0.01
    np.testing.assert_allclose(decode(int8_rows(vectors)), to_int8(vectors)[0] * to_int8(vectors)[1][:, None])
    for empty in (to_int8(np.zeros((1, 512), np.float32))[0], from_codes(to_codes(np.zeros((1, 512), np.float32))[0])):
        assert not empty.any()  # an empty piece stays zero, not NaN


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([NGRAM_TERMS, WORD_TERMS]).flatmap(lambda layout: st.tuples(st.just(layout), st.lists(
    st.tuples(st.integers(0, (1 << layout.id_bits) - 1), st.integers(1, 1000)), max_size=50))))
def test_terms_round_trip_with_counts_capped(case):
    layout, terms = case
    ids = np.array([i for i, _ in terms], dtype=np.uint32)
    counts = np.array([c for _, c in terms], dtype=np.uint16)
    packed = pack_terms(ids, counts, layout)
    assert packed.dtype == np.uint8 and packed.shape == (len(terms), layout.width)
    got_ids, got_counts = unpack_terms(packed, layout)
    assert got_ids.tolist() == ids.tolist()
    assert got_counts.tolist() == np.minimum(counts, layout.max_count).tolist()


def test_term_layouts_fit_their_ids_and_refuse_larger_ones():
    assert (NGRAM_TERMS.max_count, WORD_TERMS.max_count) == (16, 256)
    for layout in (NGRAM_TERMS, WORD_TERMS, TermLayout(10, 2)):
        with pytest.raises(ValueError, match=f"below 2\\*\\*{layout.id_bits}"):
            pack_terms(np.array([1 << layout.id_bits], np.uint32), np.array([1]), layout)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=3000), st.binary(max_size=40_000))
def test_text_round_trips_through_deflate_with_any_dictionary(text, dictionary):
    assert inflate_text(deflate_text(text, dictionary), dictionary) == text
