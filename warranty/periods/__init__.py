"""Closed months: the books' lock and booking dates."""
