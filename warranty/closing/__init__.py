"""Closing a month: it freezes the month's report figures."""
