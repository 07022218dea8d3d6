"""Pricing rule sets and plan prices."""
