"""Customers: facts for the retention report, history, lookups by email."""
