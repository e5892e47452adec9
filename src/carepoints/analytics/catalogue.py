"""Imports every module that registers analytics views or roll-ups, so the registries are
complete wherever they are read (API, pages, job, benchmark)."""

# each area adds its module here
