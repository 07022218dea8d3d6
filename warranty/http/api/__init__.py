"""The JSON API under /api/v1: endpoints declare their models once, for validation and OpenAPI."""
