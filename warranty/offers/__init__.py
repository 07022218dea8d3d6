"""Plan offers and their signed tokens."""
