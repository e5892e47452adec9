"""Scheduling (预约挂号): sessions, slots and appointments on one shared slot pool."""

from carepoints.scheduling import privacy as _privacy

_privacy.connect()  # (trust.privacy) appointments in the data download, cancelled at erasure

from carepoints.scheduling import merge as _merge  # noqa: E402

_merge.connect()  # (ops.merge) appointments, waitlist places and checkup bookings follow a merged record

from carepoints.scheduling import closure as _closure  # noqa: E402

_closure.connect()  # (ops.identity) future appointments cancelled for a deceased or closed account
