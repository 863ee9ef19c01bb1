"""Authentication building blocks, one small module per third-party library or secret kind."""
