"""Orders: carts, post-purchase plans, imports, order events."""
