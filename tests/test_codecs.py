"""The compact row codecs of the index format (qa.store.codecs) and the chunk text's deflate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qa.store.chunk_table import deflate_text, inflate_text
from qa.store.codecs import NGRAM_TERMS, WORD_TERMS, TermLayout, pack_terms, to_int8, unpack_terms

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0, max_side=40), elements=finite))
def test_int8_codes_restore_each_component_within_half_a_step(vectors):
    codes, scales = to_int8(vectors)
    assert codes.dtype == np.int8 and codes.shape == vectors.shape
    restored = codes.astype(np.float32) * scales[:, None]
    assert (np.abs(restored - vectors) <= scales[:, None] / 2 * (1 + 1e-5) + 1e-30).all()


def test_quantised_unit_vectors_keep_their_cosines():
    vectors = np.random.default_rng(0).standard_normal((50, 512)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codes, scales = to_int8(vectors)
    assert np.abs(np.sum(codes * scales[:, None] * vectors, axis=1) - 1).max() < 2e-3
    assert not to_int8(np.zeros((1, 512), np.float32))[0].any()  # an empty piece stays zero, not NaN


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
