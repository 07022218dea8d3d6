"""Plan prices for a product under a rule document."""

from __future__ import annotations

from dataclasses import dataclass

from warranty.core import money
from warranty.pricing.rules import PlanSpec, RuleDocument


@dataclass(frozen=True)
class PricedPlan:
    """A plan with its server-computed price for one product price."""

    spec: PlanSpec
    price: int  # minor units


class NoOffer(Exception):
    """Why a product gets no plans: a stable code and a readable reason."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def price_plans(rules: RuleDocument, category: str, product_price: int,
                manufacturer_months: int) -> list[PricedPlan]:
    """Every eligible plan for a product, priced; raises NoOffer with the reason when none."""
    cat = rules.categories.get(category)
    if cat is None:
        raise NoOffer("no_rules_for_category", f"no pricing rules for category '{category}'")
    band = next((b for b in cat.bands if b.contains(product_price)), None)
    if band is None:
        raise NoOffer("price_outside_bands",
                      f"price {product_price} is outside every price band of '{category}'")
    plans = []
    for spec in cat.plans:
        rule = band.prices.get(spec.code)
        if rule is None:
            continue
        # Accident cover starts at purchase; a breakdown-only plan must outlast the
        # manufacturer's warranty or it covers nothing.
        if spec.coverage == "standard" and spec.term_months <= manufacturer_months:
            continue
        if rule.fixed is not None:
            price = money.round_up(rule.fixed, rules.step)
        else:
            price = money.price_at_rate(product_price, rule.rate, floor=rule.floor,
                                        step=rules.step)
        plans.append(PricedPlan(spec=spec, price=price))
    if not plans:
        if band.prices:
            raise NoOffer("nothing_past_manufacturer_warranty",
                          f"every plan ends within the {manufacturer_months}-month "
                          "manufacturer's warranty")
        raise NoOffer("no_plan_in_band", "no plan is offered in this price band")
    return plans
