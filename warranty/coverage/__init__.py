"""A plan's coverage: its dates and its span (pure date arithmetic, no database)."""
