"""JSON responses encoded by orjson, with Flask's own rules for what orjson leaves to us.

orjson writes dicts, lists, numbers, strings, dataclasses and UUIDs itself, several times
faster than the standard library; datetimes, dates, Decimals and anything else go through
Flask's default conversion, so every response reads exactly as before.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_COMPACT = {"separators": (",", ":")}  # what Flask's ``response`` passes outside debug


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON provider with ``dumps`` by orjson (``loads`` is unchanged)."""

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Compact JSON (what responses ask for); pretty-printing (``indent``) and other
        options take Flask's path."""
        if kwargs and kwargs != _COMPACT:
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS).decode()
        except orjson.JSONEncodeError:
            # orjson writes integers of at most 64 bits; a validation error may echo a
            # bigger one a client sent (an amount of 2^64): the standard library writes it.
            return super().dumps(obj, **_COMPACT)
