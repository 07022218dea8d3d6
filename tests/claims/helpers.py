"""Arranging claims for tests: a contract, then a claim filed through the domain."""

from __future__ import annotations

from datetime import date

from warranty.claims import filing

TODAY = date(2028, 6, 1)  # inside the default factory contract's term (2026-01-10..2029-01-09)


def file(db, settings, contract, *, incident=date(2027, 3, 1), failure="breakdown",
         description="It stopped turning on.", estimate=None, files=(), email=None,
         today=TODAY, lang="en"):
    """File a claim on ``contract`` and commit; returns the claim."""
    claim = filing.file_claim(session=db, settings=settings, contract=contract,
                              customer_email=email or contract.customer_email,
                              incident_date=incident, failure_type=failure,
                              description=description, estimated_amount=estimate,
                              files=list(files), actor="customer:test", today=today, lang=lang)
    db.commit()
    return claim
