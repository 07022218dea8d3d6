"""HTML and static routes: the storefront embed's assets and the demo store."""
