"""Flask: the app factory, the JSON API and the web pages."""
