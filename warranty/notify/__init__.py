"""Generic delivery: the mail outbox and the store's webhooks."""
