"""Credentials, roles, sign-in sessions and signed links."""
