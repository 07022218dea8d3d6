"""The HTML pages: customer, staff, reports, embed, API docs, demo store (what they share is
in warranty.http.web.pages)."""
