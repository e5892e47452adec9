"""Behaviour events: ingest, dedupe, revoke (the spine)."""

from carepoints.events import retention as _retention  # noqa: F401  (trust.privacy) registers its retention kind
