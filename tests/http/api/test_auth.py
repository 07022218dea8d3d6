"""Missing and wrong credentials on every kind of endpoint."""

from datetime import timedelta

import pytest

from warranty.auth.credentials import issue_token
from warranty.auth.models import ApiToken
from warranty.core.dates import utcnow

STAFF_CALLS = [("get", "/api/v1/rule-sets"), ("get", "/api/v1/products/X"),
               ("post", "/api/v1/products"), ("post", "/api/v1/rule-sets")]


@pytest.mark.parametrize(("method", "path"), STAFF_CALLS)
@pytest.mark.parametrize(("header", "code"), [
    (None, "unauthorized"), ("Bearer nope", "unauthorized"), ("Basic abc", "unauthorized"),
    ("Bearer ", "unauthorized"), ("test-admin-token", "unauthorized"),
])
def test_staff_endpoints_need_a_valid_bearer_token(client, method, path, header, code):
    headers = {"Authorization": header} if header else {}
    res = getattr(client, method)(path, headers=headers, json={})
    assert res.status_code == 401
    assert res.json["error"]["code"] == code


def test_issued_tokens_expire_revoke_and_respect_roles(client, db):
    staff = issue_token(session=db, name="alice", role="staff")
    finance = issue_token(session=db, name="bob", role="finance")
    old = issue_token(session=db, name="old", role="staff",
                      expires_at=utcnow() - timedelta(minutes=1))
    db.commit()
    assert client.get("/api/v1/rule-sets",
                      headers={"Authorization": f"Bearer {staff}"}).status_code == 200
    denied = client.post("/api/v1/rule-sets", headers={"Authorization": f"Bearer {finance}"},
                         json={})  # changing rules is for admins
    assert denied.status_code == 403 and denied.json["error"]["code"] == "forbidden"
    assert denied.json["error"]["details"] == {"permission": "admin", "roles": ["admin"]}
    expired = client.get("/api/v1/rule-sets", headers={"Authorization": f"Bearer {old}"})
    assert expired.status_code == 401 and expired.json["error"]["code"] == "token_expired"
    row = db.exec(ApiToken.__table__.select().where(ApiToken.name == "alice")).first()
    db.exec(ApiToken.__table__.update().where(ApiToken.id == row.id).values(revoked_at=utcnow()))
    db.commit()
    revoked = client.get("/api/v1/rule-sets", headers={"Authorization": f"Bearer {staff}"})
    assert revoked.status_code == 401 and revoked.json["error"]["code"] == "token_revoked"


@pytest.mark.parametrize(("headers", "query", "code"), [
    ({}, "", "missing_public_key"),
    ({"X-Warranty-Key": "pk_wrong"}, "", "wrong_public_key"),
    ({}, "&key=pk_wrong", "wrong_public_key"),
])
def test_storefront_endpoints_need_the_public_key(client, headers, query, code):
    res = client.get(f"/api/v1/offers?sku=X{query}", headers=headers)
    assert res.status_code == 401 and res.json["error"]["code"] == code


def test_public_key_is_not_a_staff_credential(client, store_key):
    res = client.get("/api/v1/rule-sets", headers=store_key)
    assert res.status_code == 401
