"""Keep capability links out of places that outlive them: staff pages and access logs.

A sign-in link, an NPS link and a post-purchase link each carry a token that acts for the
customer. Staff read mail bodies with every such link removed, and the access logs of
gunicorn and the development server write request lines with token values replaced.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

REMOVED_LINK = "[link removed]"
REDACTED = "[redacted]"
# Any http(s) URL up to whitespace or a closing bracket/quote.
_URL = re.compile(r"https?://[^\s<>\"'()\[\]]+", re.IGNORECASE)
# Query parameters whose values are secrets: token, offer_token, ... (and any "*token*").
_SECRET_PARAM = re.compile(r"token|secret|password|signature", re.IGNORECASE)


def redact_links(text: str, base_url: str) -> str:
    """``text`` with every URL that points at this service or has a query string removed
    (the links a customer was mailed: they sign in or act for them)."""
    base = base_url.rstrip("/").lower()

    def replace(match: re.Match) -> str:
        url = match.group(0)
        lowered = url.lower()
        if "?" in url or lowered == base or lowered.startswith(base + "/"):
            return REMOVED_LINK
        return url

    return _URL.sub(replace, text or "")


def redact_query(query: str) -> str:
    """A query string with the values of secret-carrying parameters replaced."""
    if not query:
        return query
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        return REDACTED
    if not pairs:
        # Nothing parseable: keep nothing that might be a token.
        return REDACTED if len(query) > 16 else query
    return urlencode([(key, REDACTED if _SECRET_PARAM.search(key) else value)
                      for key, value in pairs], safe="[]")


_SECRET_PAIR = re.compile(r"([?&;](?:[\w.-]*(?:token|secret|password|signature)[\w.-]*)=)"
                          r"[^&;\s\"']*", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Free text (a log line) with every ``?token=...``-style value replaced."""
    return _SECRET_PAIR.sub(lambda m: m.group(1) + REDACTED, text or "")


def redact_target(target: str) -> str:
    """A request target (path and query) with its secret query values replaced."""
    path, mark, query = (target or "").partition("?")
    return f"{path}?{redact_query(query)}" if mark else path


def redact_request_line(line: str) -> str:
    """``GET /my/sign-in?token=... HTTP/1.1`` with the token replaced."""
    parts = (line or "").split(" ")
    if len(parts) >= 2:
        parts[1] = redact_target(parts[1])
    return " ".join(parts)
