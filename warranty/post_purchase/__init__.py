"""Plans bought after the purchase, for an order line's units not yet covered."""
