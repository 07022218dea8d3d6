"""The store's products."""
