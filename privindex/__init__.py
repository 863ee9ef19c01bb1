"""privindex: a self-hosted private Python package index for small teams."""

__version__ = "0.1.0"
