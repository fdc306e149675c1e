"""The package version (one place; certify/__init__ and the certificates read it)."""

__version__ = "0.1.0"
