"""Which characters a model writes and how pasted text is mapped onto them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.handwriting.alphabet import RARE_LINE_COUNT, TYPOGRAPHY, Alphabet, UnknownCharactersError

PLAIN = Alphabet(" !\"'-.?ABCabcdefghijklmnopqrstuvwxyz")


def test_typography_is_mapped_with_a_notice():
    prepared = PLAIN.prepare("\u201cwell\u201d \u2013 it\u2019s\u00a0fine\u2026 \u2014 \u2018ok\u2019")
    assert prepared.text == "\"well\" - it's fine... - 'ok'"
    assert len(prepared.notices) == 1
    notice = prepared.notices[0]
    assert "typography" in notice
    for char in "\u201c\u201d\u2013\u2014\u2019\u2018\u00a0\u2026":
        assert repr(char) in notice, char


def test_plain_text_gets_no_notice_and_whitespace_collapses():
    prepared = PLAIN.prepare("  a  b\n c ")
    assert prepared.text == "a b c"
    assert prepared.notices == []


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=list("abc -'\".") + list(TYPOGRAPHY), min_size=1, max_size=30))
def test_every_typography_character_maps_to_something_writable(text):
    if not "".join(TYPOGRAPHY.get(c, c) for c in text).split():
        with pytest.raises(ValueError, match="no text"):
            PLAIN.prepare(text)
        return
    prepared = PLAIN.prepare(text)
    assert not PLAIN.unknown(prepared.text)
    assert prepared.text == prepared.text.strip() and "  " not in prepared.text
    assert bool(prepared.notices) == any(c in TYPOGRAPHY for c in text)


def test_unknown_characters_are_named():
    with pytest.raises(UnknownCharactersError) as info:
        PLAIN.prepare("abc \u20ac zz 7 \u20ac")
    assert info.value.characters == ["7", "\u20ac"]
    assert "'7'" in str(info.value) and repr("\u20ac") in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnknownCharactersError, match="'#'"):
        PLAIN.encode("a#")


def test_empty_text_is_an_error():
    for text in ("", "   ", "\u00a0\t\n"):
        with pytest.raises(ValueError, match="no text to write"):
            PLAIN.prepare(text)


def test_alphabet_from_texts_lists_rare_characters_and_leaves_out_hash():
    texts = ["ab c"] * RARE_LINE_COUNT + ["a q#"] + ["zz"] * (RARE_LINE_COUNT - 1)
    alphabet = Alphabet.from_texts(texts)
    assert alphabet.characters == " abcqz"
    assert alphabet.rare == "qz"  # q on 1 line, z on RARE_LINE_COUNT - 1 lines (counted once per line)
    assert "#" not in alphabet
    prepared = alphabet.prepare("a qz")
    assert len(prepared.notices) == 1
    assert "rare" in prepared.notices[0] and "'q'" in prepared.notices[0] and "'z'" in prepared.notices[0]
    assert "'a'" not in prepared.notices[0]
    assert alphabet.prepare("ab c").notices == []


def test_encode_and_dict_round_trip():
    alphabet = Alphabet("ab c", rare="c")
    np.testing.assert_array_equal(alphabet.encode("cab "), [3, 0, 1, 2])
    assert alphabet.encode("cab ").dtype == np.int64
    again = Alphabet.from_dict(alphabet.to_dict())
    assert again == alphabet and again.rare == "c" and len(again) == 4
    np.testing.assert_array_equal(again.encode("cab "), alphabet.encode("cab "))
