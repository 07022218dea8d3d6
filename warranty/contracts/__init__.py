"""Contracts: coverage, lifecycle, cancellation, returns, transfers, notices."""
