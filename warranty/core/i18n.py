"""Texts people read, in Japanese and English: pages (customer and staff), mails and the
messages of error pages.

The texts are gettext catalogs, one ``.po`` file per language in ``warranty/core/locales``
(``<lang>/LC_MESSAGES/messages.po``). A message id is a dotted key (``claim.title``), the same
in every language, and its translation may hold ``{name}`` placeholders that :func:`t` fills.
The ``.po`` files are read the first time a language is asked for and kept for the process
(they are package data: what is installed is what is read), so there is no compiled ``.mo``
file to build or to commit. The pages reach the same catalogs through Flask-Babel
(``warranty.http.babel``); mails and domain code call :func:`t` directly.

Add a text: ``python -m devtools.catalogs add KEY --ja ... --en ...`` (or edit both ``.po``
files); ``tests/core/test_i18n_catalogs.py`` fails when a language lacks a text, or code or
a template uses a key the catalogs do not have.
"""

from __future__ import annotations

import io
import string
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("ja", "en")
DEFAULT = "ja"
DOMAIN = "messages"
LOCALES = Path(__file__).resolve().parent / "locales"


@cache
def _read(lang: str):
    path = LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as fp:
        return read_po(fp, locale=lang, domain=DOMAIN)


@cache
def catalog(lang: str) -> dict[str, str]:
    """``{key: text}`` of one language (only translated, non-fuzzy texts)."""
    return {m.id: m.string for m in _read(lang) if m.id and m.string and not m.fuzzy}


@cache
def translations(lang: str) -> Translations:
    """The gettext translations of one language (what Flask-Babel serves the templates)."""
    buffer = io.BytesIO()
    write_mo(buffer, _read(lang))
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def forget() -> None:
    """Read the ``.po`` files again on next use (after a tool edited them)."""
    for cached in (_read, catalog, translations):
        cached.cache_clear()


def has(key: str) -> bool:
    """Whether ``key`` has a text in every language."""
    return all(key in catalog(lang) for lang in LANGUAGES)


def t(lang: str, key: str, **values: object) -> str:
    """The text for ``key`` in ``lang`` (falling back to Japanese, then to the key itself),
    its ``{name}`` placeholders filled from ``values``."""
    text = catalog(pick(lang)).get(key) or catalog(DEFAULT).get(key)
    if text is None:
        return key
    return text.format(**values) if values else text


def placeholders(text: str) -> set[str]:
    """The ``{name}`` placeholders of a text."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def pick(accept: str | None) -> str:
    """The supported language to use for a stored or requested code, else the default."""
    return accept if accept in LANGUAGES else DEFAULT
