"""Scheduling (预约挂号): sessions, slots and appointments on one shared slot pool."""

from carepoints.scheduling import privacy as _privacy

_privacy.connect()  # (trust.privacy) appointments in the data download, cancelled at erasure
