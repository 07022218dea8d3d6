"""Building blocks with no database and no Flask: money, dates, errors, text, settings."""
