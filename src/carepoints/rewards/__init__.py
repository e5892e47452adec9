"""rewards."""

from carepoints.rewards import merge as _merge

_merge.connect()  # (ops.merge) redemptions, coupons, fee offsets and usage follow a merged record
