"""Offer tokens: an offer's signed token verifies, and tampering of any kind is refused."""

import time

import pytest
from itsdangerous import URLSafeSerializer

from tests.conftest import SECRET
from tests.factories import add_product, load_rules
from warranty.core.errors import InvalidOffer
from warranty.offers import tokens


@pytest.fixture
def token(client, db, store_key):
    load_rules(db)
    add_product(db, sku="TV-1", price=120000)
    offer = client.get("/api/v1/offers?sku=TV-1", headers=store_key).json["offers"][0]
    return offer["offer_token"]


def verify(tok, **overrides):
    args = {"secret": SECRET, "sku": "TV-1", "product_price": 120000, "currency": "jpy"}
    args.update(overrides)
    return tokens.verify_offer_token(tok, **args)


def test_valid_token_verifies(token):
    claim = verify(token)
    assert claim.plan_code == "standard-36" and claim.price == 6000 and claim.rule_set_version


def _payload(tok):
    valid, payload = URLSafeSerializer("any", salt="warranty.offer").loads_unsafe(tok)
    return payload


def test_altered_price_is_refused(token):
    payload = _payload(token)
    assert payload["price"] == 6000
    payload["price"] = 1
    # Same signature, new payload: the body a shopper's browser could edit.
    altered = URLSafeSerializer("any", salt="warranty.offer").dumps(payload)
    forged = altered.rsplit(".", 1)[0] + "." + token.rsplit(".", 1)[1]
    with pytest.raises(InvalidOffer) as err:
        verify(forged)
    assert err.value.code == "offer_bad_signature"


def test_token_signed_with_another_key_is_refused(token):
    payload = _payload(token)
    forged = URLSafeSerializer("guessed-secret", salt="warranty.offer").dumps(payload)
    with pytest.raises(InvalidOffer) as err:
        verify(forged)
    assert err.value.code == "offer_bad_signature"


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-3], lambda t: t + "A", lambda t: "", lambda t: "not-a-token",
    lambda t: t.replace(".", ""), lambda t: 12345, lambda t: "x" * 5000,
])
def test_truncated_or_garbage_tokens_are_refused(token, mangle):
    with pytest.raises(InvalidOffer):
        verify(mangle(token))


def test_expired_token_is_refused(token):
    with pytest.raises(InvalidOffer) as err:
        tokens.verify_offer_token(token, secret=SECRET, sku="TV-1", product_price=120000,
                                  currency="jpy", now=time.time() + 7200)
    assert err.value.code == "offer_expired"


@pytest.mark.parametrize(("overrides", "code"), [
    ({"sku": "TV-2"}, "offer_product_mismatch"),
    ({"sku": None}, "offer_product_mismatch"),
    ({"product_price": 119999}, "offer_price_mismatch"),
    ({"currency": "usd"}, "offer_currency_mismatch"),
])
def test_token_for_another_product_or_price_is_refused(token, overrides, code):
    with pytest.raises(InvalidOffer) as err:
        verify(token, **overrides)
    assert err.value.code == code
