"""Stripe: the one client, checkout, events, refunds."""
