"""The embed's files: small, self-contained, and safe under a strict CSP."""

import gzip
import re

MAX_GZIPPED = 15 * 1024


def _get(client, path: str):
    """Fetch a static file and close it (file responses hold the file open)."""
    with client.get(path) as res:
        res.data  # noqa: B018 - read the body before the file closes
        return res


def test_embed_js_is_served_small_and_cacheable(client):
    res = _get(client, "/embed.js")
    assert res.status_code == 200 and res.mimetype == "text/javascript"
    assert res.headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=3600" in res.headers["Cache-Control"]
    size = len(gzip.compress(res.data, compresslevel=9))
    assert size < MAX_GZIPPED, f"embed.js is {size} bytes gzipped; the budget is {MAX_GZIPPED}"
    css = _get(client, "/embed.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def test_embed_js_needs_nothing_a_strict_csp_forbids(client):
    source = _get(client, "/embed.js").get_data(as_text=True)
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.S)  # the header comment shows a URL
    for forbidden in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML",
                      ".style.", "'style'", "setAttribute('style'", "document.write",
                      "http://", "https://", "import("):
        assert forbidden not in code, forbidden
    assert "setTimeout('" not in code and 'setTimeout("' not in code
