"""The embed's experiment endpoints: a visitor's arm, and batched offer events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field

from warranty.core.dates import store_today, utcnow
from warranty.core.errors import ValidationFailed
from warranty.core.text import SingleLine
from warranty.db.types import MAX_COLUMN_AMOUNT as MAX_AMOUNT
from warranty.experiment import arms
from warranty.experiment import events as experiment_events
from warranty.http import ratelimit
from warranty.http.api.spec import endpoint
from warranty.http.errors import RateLimited, error_body, status_of
from warranty.http.session import get_session

bp = Blueprint("experiment", __name__, url_prefix="/api/v1")

VisitorId = Field(pattern=arms.VISITOR_ID.pattern,
                  description="the embed's anonymous visitor id (8-64 of A-Z a-z 0-9 _ -)")


class AssignmentQuery(BaseModel):
    """Whose arm to tell: the visitor id the embed holds, if any."""

    visitor_id: str | None = Field(default=None, pattern=arms.VISITOR_ID.pattern,
                                   description="the id this service issued earlier; without "
                                               "one, or with one it did not sign, a new id "
                                               "is issued")
    key: str | None = Field(default=None, description="the store's public key")


class Assignment(BaseModel):
    """A visitor's signed id and arm: ``holdout`` visitors are shown no offers."""

    visitor_id: str = Field(description="the signed id to keep and send with events and "
                                        "checkout")
    issued: bool = Field(description="true when this answer issued a new id")
    experiment: str
    arm: Literal["treatment", "holdout"]
    show_offers: bool
    holdout_share: float


class EventIn(BaseModel):
    """One thing a visitor saw or did with an offer."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["exposure", "offer_viewed", "offer_selected", "offer_removed",
                  "checkout_started"] = Field(description="exposure: a placement had offers "
                                              "(shown to treatment, withheld from holdout)")
    placement: Literal["product_page", "add_to_cart_modal", "cart", "post_purchase"] | None = None
    sku: SingleLine | None = Field(default=None, min_length=1, max_length=100)
    category: SingleLine | None = Field(default=None, min_length=1, max_length=100,
                                        description="store or warranty category of the product")
    price: int | None = Field(default=None, ge=0, le=MAX_AMOUNT,
                              description="product unit price, minor units")
    plan_code: SingleLine | None = Field(default=None, min_length=1, max_length=50)
    plan_price: int | None = Field(default=None, ge=0, le=MAX_AMOUNT, description="minor units")
    quantity: int | None = Field(default=None, ge=1, le=10_000)
    order_id: str | None = Field(default=None, pattern=r"^ord_[A-Za-z0-9]{1,36}$")
    at: int | None = Field(default=None, ge=0, le=10**14,
                           description="client time, ms since the Unix epoch (clamped)")


class EventBatch(BaseModel):
    """Up to 100 events of one visitor (JSON, or JSON sent as text/plain by sendBeacon)."""

    model_config = ConfigDict(extra="forbid")

    visitor_id: str = VisitorId
    events: list[EventIn] = Field(min_length=1, max_length=experiment_events.MAX_EVENTS_PER_BATCH)


class EventsAccepted(BaseModel):
    """How many events were stored, and the arm the server recorded them under."""

    accepted: int
    arm: Literal["treatment", "holdout"]


@endpoint(bp, "/experiment/assignment", summary="A visitor's experiment arm", auth="public",
          query=AssignmentQuery, response=Assignment)
def get_assignment(query: AssignmentQuery):
    """The visitor's signed id (kept, or issued now) and its arm, from a hash of (salt, id)."""
    settings = current_app.config["SETTINGS"]
    visitor_id = query.visitor_id
    issued = arms.visitor_id_problem(visitor_id, settings.secret_key) is not None
    if issued:
        visitor_id = arms.issue_visitor_id(settings.secret_key)
    arm = arms.assign_arm(visitor_id, salt=settings.experiment_salt,
                                share=settings.holdout_share)
    return {"visitor_id": visitor_id, "issued": issued, "experiment": settings.experiment_salt,
            "arm": arm, "show_offers": arm == arms.TREATMENT,
            "holdout_share": settings.holdout_share}


def _wait_for_events(visitor_id: str | None, count: int) -> int:
    """Spend ``count`` from the visitor's (when it is one) and the address's allowances:
    0, or seconds to wait."""
    limits = ratelimit.limits()
    if limits is None:
        return 0
    s = current_app.config["SETTINGS"]
    allowances = [(ratelimit.per_second(s.events_rate_per_ip, s.events_burst_per_ip),
                   "events-address", ratelimit.client_key())]
    if visitor_id is not None:
        allowances.append((ratelimit.per_second(s.events_rate_per_visitor,
                                                s.events_burst_per_visitor),
                           "events-visitor", visitor_id))
    return limits.take(count, allowances)


def _too_many(wait: int):
    """429 with Retry-After, in the API's error shape."""
    error = RateLimited("too many events; retry later")
    return jsonify(error_body(error)), status_of(error), {"Retry-After": str(wait)}


@endpoint(bp, "/events", method="POST", summary="Record a batch of offer events",
          auth="public", body=EventBatch, response=EventsAccepted, status=202, errors=(429,),
          beacon=True)
def post_events(body: EventBatch):
    """Refuse ids this service did not sign; rate-limit by visitor and address, recompute
    the arm, insert the batch in one go."""
    count = len(body.events)
    settings = current_app.config["SETTINGS"]
    problem = arms.visitor_id_problem(body.visitor_id, settings.secret_key)
    wait = _wait_for_events(None if problem else body.visitor_id, count)
    if wait:
        return current_app.make_response(_too_many(wait))
    session = get_session()
    if problem:
        # Counted (the report shows how many), never stored as events.
        arms.count_refused(session=session, day=store_today(settings.timezone),
                                 source="events", reason=problem, count=count)
        session.commit()
        raise ValidationFailed(f"visitor_id is {problem}: send the signed id that "
                               "/api/v1/experiment/assignment issued",
                               code=f"{problem}_visitor_id",
                               details=[{"at": "visitor_id", "message": problem}])
    events = [experiment_events.EventIn(
        type=e.type, placement=e.placement, sku=e.sku, category=e.category, price=e.price,
        plan_code=e.plan_code, plan_price=e.plan_price, quantity=e.quantity, order_id=e.order_id,
        occurred_at=datetime.fromtimestamp(e.at / 1000, UTC) if e.at is not None else None,
    ) for e in body.events]
    arm = experiment_events.record_events(
        session=session, visitor_id=body.visitor_id, events=events,
                                   salt=settings.experiment_salt, share=settings.holdout_share,
                                   received_at=utcnow())
    session.commit()
    return {"accepted": count, "arm": arm}
