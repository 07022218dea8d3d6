"""HTML pages and assets: customer pages, the storefront embed, the demo store."""
