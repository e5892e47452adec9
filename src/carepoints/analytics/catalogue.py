"""Imports every module that registers analytics views or roll-ups, so the registries are
complete wherever they are read (API, pages, job, benchmark)."""

from carepoints.analytics import experiments

__all__ = ["experiments"]
