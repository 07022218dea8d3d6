"""Booked dates and closed months: booking dates, the books' lock (closing a month is
warranty.closing)."""
