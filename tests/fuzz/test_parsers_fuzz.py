"""Fuzzing the parsers that read untrusted input: the Stripe webhook, offer tokens, uploads.

Each may refuse with its own domain error, never with anything else (which would be a 500).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from warranty.claims import attachments as uploads
from warranty.core.errors import InvalidOffer
from warranty.http.errors import status_of
from warranty.offers import tokens
from warranty.payments import events as stripe_events

SECRET = "whsec_fuzz"
FAST = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# Nested JSON is slower to generate; fewer examples keep those tests near a second.
NESTED = settings(max_examples=100, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
EVENTISH = st.fixed_dictionaries({}, optional={
    "id": JSON | st.text(), "type": JSON | st.sampled_from(sorted(stripe_events.INTENT_EVENTS)),
    "object": st.just("event") | JSON, "data": JSON, "created": JSON})


def _sign(body: bytes, stamp: int | None = None) -> str:
    """A valid Stripe-Signature header for ``body``."""
    stamp = int(time.time()) if stamp is None else stamp
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


@FAST
@given(body=st.binary(max_size=300), header=st.none() | st.text(max_size=200))
@example(body=b"{}", header="t=1,v1=")
@example(body=b"\xff", header="t=,v1=abc,v0=")
def test_webhook_random_bodies_and_headers_are_only_refused(body, header):
    with pytest.raises(stripe_events.InvalidSignature):
        stripe_events.verify(body, header, SECRET)


@NESTED
@given(payload=JSON | EVENTISH, raw=st.booleans())
@example(payload=[], raw=False)
@example(payload={"id": 5, "type": []}, raw=False)
def test_webhook_signed_odd_bodies_are_parsed_or_refused(payload, raw):
    # Correctly signed, so only the body's shape is under test.
    body = json.dumps(payload).encode() if not raw else repr(payload).encode()
    try:
        event = stripe_events.verify(body, _sign(body), SECRET)
    except stripe_events.InvalidSignature:
        return
    assert isinstance(event.id, str) and isinstance(event.type, str)
    stripe_events.object_id(event.to_dict())  # what the webhook reads next


@FAST
@given(token=st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_\-.]{0,120}", fullmatch=True))
def test_random_offer_tokens_are_invalid_offers(token):
    with pytest.raises(InvalidOffer):
        tokens.verify_offer_token(token, secret="s" * 20, sku="TV", product_price=100,
                                  currency="jpy")


@NESTED
@given(data=JSON | st.dictionaries(
    st.sampled_from(["sku", "cat", "pp", "mfr", "plan", "price", "cur", "rv", "exp", "v"]),
    JSON, min_size=8))
@example(data={"sku": "TV", "cat": "tv", "pp": float("inf"), "mfr": 12, "plan": "x",
               "price": 1, "cur": "jpy", "rv": 1, "exp": 9e99, "v": 1})
def test_signed_tokens_with_odd_contents_are_invalid_offers(data):
    # Signed with the real secret: an old or buggy token must still be refused cleanly.
    token = tokens.serializer("s" * 20).dumps(data)
    try:
        claim = tokens.verify_offer_token(token, secret="s" * 20, sku="TV", product_price=100,
                                          currency="jpy")
    except InvalidOffer:
        return
    assert (claim.sku, claim.product_price, claim.currency) == ("TV", 100, "jpy")


@FAST
@given(tail=st.binary(max_size=64), head=st.sampled_from(
    [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBP", b"\0\0\0\0ftypheic",
     b"%PDF-", b"RIFF", b"\0\0\0\0ftyp"]), name=st.text(max_size=300))
def test_uploads_are_accepted_or_refused_never_crash(tail, head, name):
    upload = uploads.Upload(filename=name, data=head + tail)
    try:
        (kind,) = uploads.check([upload])
    except uploads.UploadRefused as exc:
        assert status_of(exc) == 422
        return
    assert kind in uploads.EXTENSIONS


@FAST
@given(name=st.text(max_size=300))
@example(name="../../etc/passwd")
@example(name="..\\..\\boot.ini")
def test_names_are_made_safe_and_stored_names_cannot_escape(name, tmp_path_factory):
    shown = uploads.safe_name(name)
    assert shown and "/" not in shown and "\\" not in shown and len(shown) <= 200
    root = Path("/srv/uploads")
    try:
        path = uploads.path_of(str(root), name)
    except uploads.UploadRefused:
        return
    assert path.parent == root and path.name == name and not name.startswith(".")
