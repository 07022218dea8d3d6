"""Serial numbers as typed by stores and customers: normalised once, compared by a key."""

import pytest

from warranty.core.text import SERIAL_MAX, serial_key, serial_number


@pytest.mark.parametrize(("typed", "stored"), [
    ("SN-12345", "SN-12345"),
    ("  SN-12345  ", "SN-12345"),                 # trimmed
    ("ＳＮ－１２３４５", "SN-12345"),              # full-width (NFKC)
    ("SN\u200b123\u202e45", "SN12345"),            # zero-width space and bidi override dropped
    ("AB  12   34", "AB 12 34"),                   # runs of spaces made one
    ("\u3000X1\u3000", "X1"),                      # ideographic spaces (NFKC: a space)
    ("製造-001", "製造-001"),
])
def test_serials_are_normalised(typed, stored):
    assert serial_number(typed) == stored


@pytest.mark.parametrize("typed", ["SN\n1", "SN\t1", "SN\r\n", "\x00SN", "SN\x85", "SN\u2028",
                                   "", "   ", "\u200b", "X" * (SERIAL_MAX + 1)])
def test_control_characters_blanks_and_overlong_serials_are_refused(typed):
    with pytest.raises(ValueError):
        serial_number(typed)


def test_the_longest_serial_is_kept_whole():
    assert serial_number("X" * SERIAL_MAX) == "X" * SERIAL_MAX


def test_serials_are_compared_without_case_spaces_and_separators():
    assert serial_key("SN-12 34") == serial_key("sn1234") == serial_key("ｓｎ／１２．３４") \
        == serial_key("SN–12_34") == "sn1234"
    assert serial_key("SN-1234") != serial_key("SN-1235")
