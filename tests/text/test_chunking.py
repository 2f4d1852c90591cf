"""Tests for splitting long text into request-sized chunks."""

from __future__ import annotations

import itertools

import pytest

from bot.text.chunking import MAX_REQUEST_CHARS, split_text


def _sentence(number: int) -> str:
    """Return a distinct sentence of 40 to 80 characters."""
    return f"Sentence number {number} talks about {'things ' * (number % 7)}and stops here."


def _without_whitespace(text: str) -> str:
    return "".join(text.split())


def test_limit_is_the_reference_maximum() -> None:
    assert MAX_REQUEST_CHARS == 2000


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n"])
def test_empty_or_blank_text_gives_no_chunks(text: str) -> None:
    assert split_text(text) == []


def test_short_text_is_one_stripped_chunk() -> None:
    assert split_text("  Hello there.  \n") == ["Hello there."]


def test_five_thousand_characters_of_sentences_give_three_chunks_cut_at_sentence_ends() -> None:
    sentences: list[str] = []
    number = 0
    while sum(len(sentence) + 1 for sentence in sentences) < 5000:
        sentences.append(_sentence(number))
        number += 1
    text = " ".join(sentences)
    assert 5000 <= len(text) < 5100

    chunks = split_text(text)

    assert len(chunks) == 3
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert all(chunk.endswith("and stops here.") for chunk in chunks)
    assert " ".join(chunks) == text
    # Greedy: the first sentence of each later chunk would not have fitted in the chunk before it.
    for before, after in itertools.pairwise(chunks):
        first_sentence = after.split("here. ")[0] + "here."
        assert len(before) + 1 + len(first_sentence) > 2000


def test_sentences_are_merged_while_they_fit() -> None:
    text = "One. Two! Three? Four… Five."
    assert split_text(text, limit=11) == ["One. Two!", "Three?", "Four… Five."]


def test_long_sentence_without_punctuation_is_cut_between_words() -> None:
    words = [f"word{index:03d}" for index in range(313)]
    text = " ".join(words)
    assert len(text) == 2503

    chunks = split_text(text)

    assert len(chunks) == 2
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert chunks[0].split() + chunks[1].split() == words
    assert len(chunks[0]) + 1 + len(chunks[1].split()[0]) > 2000


def test_long_sentence_is_cut_at_a_clause_before_a_word() -> None:
    clause = "this part of the sentence goes on for a while"
    text = ", ".join([clause] * 60) + "."
    assert len(text) > 2000

    chunks = split_text(text)

    assert chunks[0].endswith(",")
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert _without_whitespace("".join(chunks)) == _without_whitespace(text)


def test_sentence_boundary_is_preferred_over_fitting_more_text() -> None:
    first = "Short opener here."
    second = "alpha, " * 3 + "omega."
    assert split_text(f"{first} {second}", limit=30) == [first, second]


def test_single_token_longer_than_the_limit_is_cut_at_code_points() -> None:
    token = "x" * 3000
    assert split_text(token) == ["x" * 2000, "x" * 1000]


def test_hard_cut_piece_packs_with_the_following_words() -> None:
    assert split_text("abcdefghij kl mn", limit=6) == ["abcdef", "ghij", "kl mn"]


def test_cjk_text_is_cut_after_full_width_terminators_without_spaces() -> None:
    sentence = "今天天气很好我们去公园散步吧。"
    text = sentence * 200
    chunks = split_text(text)

    assert len(text) == 3000
    assert [len(chunk) for chunk in chunks] == [1995, 1005]
    assert all(chunk.endswith("。") for chunk in chunks)
    assert "".join(chunks) == text


def test_cjk_exclamation_and_question_marks_end_sentences() -> None:
    assert split_text("你好！你是谁？我是机器人。", limit=8) == ["你好！你是谁？", "我是机器人。"]


def test_ascii_full_stop_inside_a_token_is_not_a_sentence_end() -> None:
    assert split_text("pi is 3.14159 and e.g.this stays", limit=16) == ["pi is 3.14159", "and e.g.this", "stays"]


def test_closing_quote_after_a_terminator_stays_with_its_sentence() -> None:
    assert split_text('He said "stop." Then left.', limit=16) == ['He said "stop."', "Then left."]


def test_single_newlines_are_clause_boundaries() -> None:
    text = "first line without stops\nsecond line also plain\nthird"
    assert split_text(text, limit=30) == ["first line without stops", "second line also plain\nthird"]


def test_blank_line_ends_a_sentence_even_without_punctuation() -> None:
    text = "a heading\n\nThe paragraph, which is long."
    assert split_text(text, limit=22) == ["a heading", "The paragraph,", "which is long."]


def test_chunks_keep_inner_newlines_but_lose_whitespace_at_the_cuts() -> None:
    chunks = split_text("Line one.\nLine two.   \n\n  Line three is here.", limit=19)
    assert chunks == ["Line one.\nLine two.", "Line three is here."]


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_text("text", limit=0)
