"""The one Stripe webhook endpoint."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from pydantic import BaseModel

from warranty.core.timing import span
from warranty.http.api.spec import endpoint
from warranty.http.clients import stripe_client
from warranty.http.session import get_session
from warranty.payments import events as stripe_events

bp = Blueprint("stripe", __name__, url_prefix="/stripe")


class WebhookAck(BaseModel):
    """What the service did with an event."""

    received: bool
    outcome: str


@endpoint(bp, "/webhook", method="POST", summary="Stripe webhook (signed by Stripe)",
          auth="none", response=WebhookAck, errors=(503,))
def receive():
    """Verify on the raw body, store the event, fetch its object again, act once.

    A delivery of an event already processed is acknowledged as a duplicate at once.

    An event whose object Stripe will never give is acknowledged with outcome "failed" (it
    is on the staff attention queue); a Stripe outage is a 503, so Stripe delivers it again.
    """
    settings = current_app.config["SETTINGS"]
    with span("verify"):
        event = stripe_events.verify(request.get_data(), request.headers.get("Stripe-Signature"),
                                     settings.stripe_webhook_secret)
    session = get_session()
    payload = event.to_dict()
    with span("record"):
        fresh = stripe_events.record(session=session, event=event, payload=payload)
        session.commit()
    if not fresh:  # processed already: Stripe delivered it again
        return WebhookAck(received=True, outcome="duplicate")
    outcome = stripe_events.process(session=session, settings=settings,
                                    stripe_client=stripe_client(), event_id=event.id,
                                    event_type=event.type, payload=payload)
    with span("commit"):
        session.commit()
    # Refunds the event made owed (a plan with no room, plans of a returned product) go to
    # Stripe now; if this request dies first, the worker sends them.
    with span("refunds"):
        stripe_events.send_refunds(session=session, settings=settings,
                                   stripe_client=stripe_client())
    return WebhookAck(received=True, outcome=outcome)
