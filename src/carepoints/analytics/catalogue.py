"""Imports every module that registers analytics views or roll-ups, so the registries are
complete wherever they are read (API, pages, job, benchmark)."""

from carepoints.analytics import care, equity, experiments, points, visits

__all__ = ["care", "equity", "experiments", "points", "visits"]
