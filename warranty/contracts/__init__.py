"""Contracts: lifecycle, queries, payloads, refund bookkeeping, notices (changes staff make are
warranty.changes)."""
