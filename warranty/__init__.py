"""warranty: a self-hosted extended-warranty service for online stores."""

__version__ = "0.1.0"
