"""Page tests share the access-control tests' local SMS gateway (login codes on SQLite and PostgreSQL)."""

from tests.security.conftest import sms

__all__ = ["sms"]
