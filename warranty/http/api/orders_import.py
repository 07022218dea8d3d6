"""Orders paid outside the service: the store reports them for retention."""

from __future__ import annotations

from flask import Blueprint, current_app
from pydantic import BaseModel, Field

from warranty.http.api.spec import endpoint
from warranty.http.session import get_session
from warranty.orders import imports as order_import

bp = Blueprint("orders_import", __name__, url_prefix="/api/v1")


class OrderImportIn(BaseModel):
    """Up to 10,000 orders, stored all or none."""

    orders: list[order_import.ExternalOrderIn] = Field(min_length=1,
                                                       max_length=order_import.MAX_BATCH)


@endpoint(bp, "/orders/import", method="POST", summary="Import orders paid outside the "
          "service (channel external, no contracts)", auth="admin", body=OrderImportIn,
          response=order_import.ImportResult)
def import_orders(body: OrderImportIn):
    """Store a batch of external orders in one transaction."""
    session = get_session()
    result = order_import.import_orders(session=session, orders=body.orders,
                                        currency=current_app.config["SETTINGS"].currency)
    session.commit()
    return result
