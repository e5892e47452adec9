"""Scheduling (预约挂号): sessions, slots and appointments on one shared slot pool."""
