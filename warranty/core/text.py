"""Text from outside (the storefront, forms, files): screened and normalised in one place.

Whoever pays types the order reference, the email and the product titles, and the embed sends
skus and visitor ids as the store's pages spell them: all of it is untrusted. This module says
what one line of text is (no control characters, so nothing reaches a mail header as a new
line), what one mail address is, how a sku is compared (``sku_key``), and how a number typed
by a person is read (``whole_number``, ``halfwidth``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field

# C0 and C1 controls (CR, LF, tab, NUL, ESC, NEL, ...) and the Unicode line and paragraph
# separators: each can end a header line for some mail or CSV reader.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"  # the same, for JSON Schema
SINGLE_LINE_MESSAGE = ("must be one line of text: line breaks, tabs and other control "
                       "characters are not allowed")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character or a line separator."""
    return CONTROL.search(text) is not None


def single_line(value: str) -> str:
    """``value`` unchanged when it is one line of text; ValueError (a 422 naming the field
    in request models) otherwise."""
    if has_control(value):
        raise ValueError(SINGLE_LINE_MESSAGE)
    return value


def one_line(value: str) -> str:
    """``value`` with every control character and line separator made a space (for text we
    must still send, such as a stored mail subject)."""
    return CONTROL.sub(" ", value)


# A request model's one-line text field: refused with a message that says why (and the field
# that holds it), and documented in OpenAPI by its pattern.
SingleLine = Annotated[str, AfterValidator(single_line),
                       Field(json_schema_extra={"pattern": SINGLE_LINE_PATTERN})]

# One mail address: a local part and a domain with a dot, and nothing an address list or a
# header could split on (spaces, commas, angle brackets, quotes, controls).
_EMAIL = re.compile(r"[^@\s,;:<>()\[\]\\\"\x00-\x1f\x7f-\x9f]{1,64}"
                    r"@[^@\s,;:<>()\[\]\\\"\x00-\x1f\x7f-\x9f]+\.[^@\s,;:<>()\[\]\\\".\x00-\x1f"
                    r"\x7f-\x9f]+")


def email_address(value: str) -> str:
    """One plausible mail address, trimmed and in lower case; ValueError otherwise.

    Delivery is the real check: this only guarantees that the text is exactly one address
    and can be a ``To`` header as it is.
    """
    value = value.strip()
    if has_control(value):
        raise ValueError(SINGLE_LINE_MESSAGE)
    if len(value) > 320 or not _EMAIL.fullmatch(value):
        raise ValueError("not an email address")
    return value.lower()


def is_email_address(value: str) -> bool:
    """Whether ``value`` is exactly one mail address (as ``email_address`` accepts)."""
    try:
        email_address(value)
    except ValueError:
        return False
    return True


EmailAddress = Annotated[str, Field(min_length=3, max_length=320),
                         AfterValidator(email_address)]


# --- skus -----------------------------------------------------------------------------

# Characters that show nothing, which a storefront's copy and paste or its templates slip in:
# every format character (Cf: zero-width space and joiners, soft hyphen, BOM, word joiner, bidi
# marks, ...) plus the invisible ones of other categories.
_INVISIBLE_OTHER = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0,
                    *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)}
# Dashes that look like the hyphen-minus: "TV‐1" and "TV–1" are how "TV-1" gets typed.
_DASHES = {0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63, 0xFF0D}
_WHITESPACE = re.compile(r"\s+")


def _visible(ch: str) -> bool:
    """Whether a character shows (is not a format character or another invisible one)."""
    return unicodedata.category(ch) != "Cf" and ord(ch) not in _INVISIBLE_OTHER


def sku_key(sku: str) -> str:
    """The form of a sku that products are matched by, however the storefront spells it.

    Unicode NFKC (full-width letters and digits become ASCII), case folded, invisible
    characters dropped, dashes made hyphens, runs of white space made one space and the ends
    trimmed: ``" ＴＶ\u200b–1 "`` and ``"tv-1"`` are the same product. The catalog keeps the
    sku as the store wrote it, and this key (unique) beside it.
    """
    text = unicodedata.normalize("NFKC", sku)
    text = "".join("-" if ord(ch) in _DASHES else ch for ch in text if _visible(ch))
    text = unicodedata.normalize("NFKC", text.casefold())
    return _WHITESPACE.sub(" ", text).strip()


# --- numbers typed by people -----------------------------------------------------------

# Full-width ASCII (U+FF01-U+FF5E), as Japanese input methods type digits, commas and
# points, and the full-width yen sign.
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0xFFE5: 0xA5}
_DIGITS = re.compile(r"[0-9]{1,18}")


def halfwidth(text: str) -> str:
    """``text`` with full-width ASCII characters made ordinary ones ("１２，０００" -> "12,000")."""
    return text.translate(_HALFWIDTH)


def whole_number(text: str | None) -> int | None:
    """A whole number typed by a person: ASCII or full-width digits, surrounding spaces
    allowed; None for anything else (other scripts' digits, superscripts, signs, blanks).

    Python's ``int()`` reads "١٢٣" and ``str.isdigit()`` says yes to "²" (which ``int()``
    then refuses): neither is used on input, so a number field can only be a number or a
    clear error, never a 500.
    """
    cleaned = halfwidth(text or "").strip()
    return int(cleaned) if _DIGITS.fullmatch(cleaned) else None


def normalize_email(email: str) -> str:
    """Emails compare case-insensitively, without surrounding spaces."""
    return (email or "").strip().lower()


def unstorable_text(data: Any, at: str = "") -> str | None:
    """Where ``data`` holds text no database can store (NUL, lone surrogates), if anywhere."""
    if isinstance(data, str):
        if "\x00" in data:
            return at or "(body)"
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            return at or "(body)"
    elif isinstance(data, dict):
        for key, value in data.items():
            where = unstorable_text(key, at) or unstorable_text(value, f"{at}.{key}".strip("."))
            if where:
                return where
    elif isinstance(data, list):
        for index, value in enumerate(data):
            where = unstorable_text(value, f"{at}.{index}".strip("."))
            if where:
                return where
    return None


# --- serial numbers --------------------------------------------------------------------

SERIAL_MAX = 64  # characters, after normalisation (manufacturers' serials are far shorter)
SERIAL_KEY_MAX = 255  # the comparison key's column


def serial_number(value: str) -> str:
    """A product serial number as typed by a store or a customer, normalised; ValueError
    (a message for people) for what cannot be one.

    Unicode NFKC (full-width "ＳＮ１２３" becomes "SN123"), invisible characters (zero-width
    spaces, bidi overrides) dropped, runs of spaces made one, the ends trimmed; control
    characters and line separators are refused, not silently dropped (they never belong in a
    serial and would reach certificates and mail); 1 to SERIAL_MAX characters.
    """
    if not isinstance(value, str):
        raise ValueError("the serial number must be text")
    text = unicodedata.normalize("NFKC", value)
    if has_control(text):
        raise ValueError("the serial number must be one line of text: line breaks, tabs and "
                         "other control characters are not allowed")
    text = "".join(ch for ch in text if _visible(ch))
    text = _WHITESPACE.sub(" ", text).strip()
    if not text:
        raise ValueError("the serial number is empty")
    if len(text) > SERIAL_MAX:
        raise ValueError(f"the serial number is longer than {SERIAL_MAX} characters")
    return text


def serial_key(serial: str) -> str:
    """The form serials are compared by (the same product on two plans): the normalised
    serial case folded, without spaces, dashes, dots or slashes ("SN-12 34" is "sn1234")."""
    text = unicodedata.normalize("NFKC", serial_number(serial).casefold())
    key = "".join(ch for ch in text
                  if not ch.isspace() and ch not in "-./_" and ord(ch) not in _DASHES)
    return key[:SERIAL_KEY_MAX]  # case folding can lengthen text ("ß" is "ss")
