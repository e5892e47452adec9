"""audit."""

from carepoints.audit import retention as _retention  # noqa: F401  (trust.audit) registers its retention kind
