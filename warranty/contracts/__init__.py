"""Contracts: lifecycle, refunds, cancellation, returns, transfers, notices."""
