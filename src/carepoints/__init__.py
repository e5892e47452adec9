"""carepoints: a patient engagement platform built around a points programme."""

__version__ = "0.1.0"
