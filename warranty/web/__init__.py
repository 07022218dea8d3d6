"""HTML pages: customer pages, staff pages, the demo store."""
