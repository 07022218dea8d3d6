"""Closed months: booking dates, the books' lock, closing a month."""
