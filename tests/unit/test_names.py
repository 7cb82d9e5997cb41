"""User names: what is refused, and which names count as the same."""

from __future__ import annotations

import pytest

from callbox.signaling import ErrorCode, SignalingError
from callbox.signaling.model import clean_user_name
from callbox.signaling.names import NameProblem, clean, keys


def alike(a: str, b: str) -> bool:
    return bool(set(keys(a)) & set(keys(b)))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice", "аlice"),  # Cyrillic а
        ("alice", "ALICE"),
        ("alice", "ａｌｉｃｅ"),  # fullwidth
        ("paul", "раul"),  # Cyrillic р and а
        ("Ian", "lan"),  # capital I, small L
        ("O", "0"),
        ("bob", "𝐛𝐨𝐛"),  # mathematical bold
    ],
)
def test_look_alikes_share_a_key(a: str, b: str) -> None:
    assert alike(a, b)


@pytest.mark.parametrize(("a", "b"), [("José", "Jose"), ("anna", "ana"), ("bob", "b0b")])
def test_different_names_stay_different(a: str, b: str) -> None:
    assert not alike(a, b)


@pytest.mark.parametrize(
    "name",
    [
        "\u3164",  # Hangul filler: renders as nothing
        "a\u3164b",
        "\u2800",  # braille blank
        "bob\u200b",  # zero-width space
        "z\u0336ack",  # combining long stroke overlay
        "e\u0301\u0301\u0301",  # three marks on one letter
        "\u202eevil",  # right-to-left override
    ],
)
def test_deceptive_names_are_refused(name: str) -> None:
    with pytest.raises(NameProblem):
        clean(name)
    with pytest.raises(SignalingError) as info:
        clean_user_name(name)
    assert info.value.code is ErrorCode.INVALID_PAYLOAD


def test_names_are_trimmed_and_may_be_any_visible_text() -> None:
    assert clean("  hi   there ") == "hi there"
    assert clean("🙂") == "🙂"
    assert clean("é") == "é"  # one combining mark is a letter with an accent
    assert clean("   ") is None
    assert clean_user_name(None) is None
    with pytest.raises(SignalingError) as info:
        clean_user_name("n" * 65)
    assert info.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(SignalingError):
        clean_user_name(5)
    with pytest.raises(NameProblem):
        clean("\u0301")  # a mark alone: nothing visible
