"""Orders: carts, imports, order events (plans bought later are warranty.post_purchase)."""
