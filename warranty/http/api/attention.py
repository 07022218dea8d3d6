"""The staff attention queue over the API: money a person must look at, and marking it handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, g
from pydantic import BaseModel, Field

from warranty.attention import services as attention
from warranty.http.api.spec import endpoint
from warranty.http.session import get_session

bp = Blueprint("attention", __name__, url_prefix="/api/v1")

Kind = Literal["amount_mismatch", "stripe_object_missing", "refund_refused", "refund_failed",
               "excess_plan_refunded", "external_refund"]


class AttentionQuery(BaseModel):
    """Which items: open ones by default, optionally of one kind; one page at a time."""

    status: Literal["open", "handled", "all"] = "open"
    kind: Kind | None = None
    page: int = Field(default=1, ge=1, le=100_000)
    per_page: int = Field(default=50, ge=1, le=200)


class AttentionItemOut(BaseModel):
    """One problem with its figures (amounts in minor units), and who handled it."""

    id: str
    kind: Kind
    status: Literal["open", "handled"]
    summary: str
    meaning: str
    order: str | None
    store_order_ref: str | None
    customer_email: str | None
    stripe_event_id: str | None
    data: dict[str, Any] = Field(description="the figures: amounts in minor units, currency, "
                                             "Stripe ids, when")
    created_at: datetime
    handled_at: datetime | None
    handled_by: str | None
    handled_note: str | None


class AttentionPage(BaseModel):
    """One page of items (open ones oldest first), and the open items per kind."""

    items: list[AttentionItemOut]
    page: int
    per_page: int
    total: int
    open_by_kind: dict[str, int]


class HandleBody(BaseModel):
    """What was done about it."""

    note: str = Field(min_length=1, max_length=2000)


@endpoint(bp, "/attention", summary="The staff attention queue (payments, refunds, Stripe)",
          auth="staff", query=AttentionQuery, response=AttentionPage)
def list_attention(query: AttentionQuery):
    """Items needing a person, with their figures."""
    page = attention.search(get_session(), status=None if query.status == "all" else query.status,
                            kind=query.kind, page=query.page, per_page=query.per_page)
    return {"items": [attention.item_dict(item, order) for item, order in page.items],
            "page": query.page, "per_page": query.per_page, "total": page.total,
            "open_by_kind": page.open_by_kind}


@endpoint(bp, "/attention/<item_id>/handle", method="POST", auth="finance",
          summary="Mark an attention item handled, with a note", body=HandleBody,
          response=AttentionItemOut, errors=(404, 409))
def handle_attention(item_id: str, body: HandleBody):
    """Audited with who and the note; an item is handled once (409 ``already_handled``)."""
    session = get_session()
    item = attention.handle(session=session, public_id=item_id, actor=g.actor, note=body.note)
    session.commit()
    return attention.item_dict(item, attention.order_of(session, item))
