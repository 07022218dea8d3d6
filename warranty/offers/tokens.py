"""The signed offer tokens checkout accepts."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass

import orjson
from itsdangerous import BadSignature, Signer, URLSafeSerializer
from itsdangerous.encoding import base64_encode, want_bytes

from warranty.core.errors import InvalidOffer, OfferStale
from warranty.core.text import sku_key

TOKEN_VERSION = 1


class _OfferSigner(Signer):
    """itsdangerous' signer with its derived key computed once, not once per signature."""

    @functools.lru_cache(maxsize=4)  # noqa: B019 (one signer per serializer, cached below)
    def derive_key(self, secret_key=None) -> bytes:
        """The HMAC key derived from the secret and salt, as itsdangerous derives it."""
        return super().derive_key(secret_key)


class _OrjsonText:
    """The JSON module itsdangerous serializes with: compact JSON by orjson, as text (what
    itsdangerous' own compact JSON gives, in half the time). Values orjson can't write
    (integers past 64 bits, infinities) take the standard library's path, and tokens are
    read by the standard library, which reads both."""

    @staticmethod
    def dumps(obj) -> str:
        """Compact JSON text."""
        try:
            return orjson.dumps(obj).decode()
        except TypeError:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)

    loads = staticmethod(json.loads)


class _OfferSerializer(URLSafeSerializer):
    """itsdangerous' URL-safe serializer, tuned for a hot path through its public hooks:
    orjson, no zlib attempt per token (offers are short), one signer per salt, not per
    call, and its key derived once. Tokens stay ordinary itsdangerous tokens."""

    default_signer = _OfferSigner
    default_serializer = _OrjsonText

    def dump_payload(self, obj) -> bytes:
        """Compact JSON in URL-safe base64, never compressed."""
        return base64_encode(want_bytes(self.serializer.dumps(obj)))

    @functools.lru_cache(maxsize=4)  # noqa: B019 (the serializer itself is cached per secret)
    def make_signer(self, salt=None):
        """The HMAC signer, built once."""
        return super().make_signer(salt)


@functools.lru_cache(maxsize=8)
def serializer(secret: str) -> URLSafeSerializer:
    """HMAC-SHA256 signer for offer tokens, with a salt of its own."""
    return _OfferSerializer(secret, salt="warranty.offer",
                            signer_kwargs={"digest_method": hashlib.sha256})


def bucket_start(now: float, bucket_seconds: int) -> int:
    """The unix time at which ``now``'s bucket of ``bucket_seconds`` began."""
    return int(now // bucket_seconds) * bucket_seconds


def bucket_expiry(now: float, ttl_seconds: int, bucket_seconds: int) -> int:
    """A token's expiry: its bucket's start plus the TTL, the same for the whole bucket (a
    token lives between ``ttl - bucket`` and ``ttl`` seconds; settings keep ttl >= 2 buckets)."""
    return bucket_start(now, bucket_seconds) + ttl_seconds


@dataclass(frozen=True)
class OfferClaim:
    """What a verified offer token says."""

    sku: str | None
    store_category: str
    product_price: int
    manufacturer_warranty_months: int
    plan_code: str
    price: int
    currency: str
    rule_set_version: int
    expires_at: int


def verify_offer_token(token: str, *, secret: str, sku: str | None, product_price: int,
                       currency: str, now: float | None = None,
                       catalog_price: bool = False) -> OfferClaim:
    """Check a token's signature, expiry and that it is for this product at this price.

    ``catalog_price``: ``product_price`` is the catalog's price now, so a token for another
    price was made before the catalog changed (stale, 409) rather than for another product.
    """
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise InvalidOffer("offer token is missing or malformed", code="offer_malformed")
    try:
        data = serializer(secret).loads(token)
    except BadSignature:
        raise InvalidOffer("offer token is forged or altered", code="offer_bad_signature") from None
    try:
        claim = OfferClaim(
            sku=data["sku"], store_category=str(data["cat"]), product_price=int(data["pp"]),
            manufacturer_warranty_months=int(data["mfr"]), plan_code=str(data["plan"]),
            price=int(data["price"]), currency=str(data["cur"]), rule_set_version=int(data["rv"]),
            expires_at=int(data["exp"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: int(Infinity)
        raise InvalidOffer("offer token is malformed", code="offer_malformed") from None
    if data.get("v") != TOKEN_VERSION:
        raise InvalidOffer("offer token is from an unsupported version", code="offer_malformed")
    if claim.expires_at < (now or time.time()):
        raise InvalidOffer("offer has expired; ask for a fresh offer", code="offer_expired")
    if (claim.sku is None) != (sku is None) or (
            sku is not None and sku_key(claim.sku) != sku_key(sku)):
        raise InvalidOffer("offer is for another product", code="offer_product_mismatch")
    if claim.product_price != product_price and catalog_price:
        raise OfferStale("the product's price changed since this offer was made; ask for "
                         "fresh offers")
    if claim.product_price != product_price:
        raise InvalidOffer("offer was made for another product price",
                           code="offer_price_mismatch")
    if claim.currency != currency:
        raise InvalidOffer("offer is in another currency", code="offer_currency_mismatch")
    return claim
