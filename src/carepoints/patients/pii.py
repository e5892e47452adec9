"""Masking of personal data in responses (张*, 138****5678, 110***********1234)."""

from __future__ import annotations


def mask_name(name: str) -> str:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str) -> str:
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_id_number(number: str) -> str:
    if len(number) < 8:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def mask_address(address: str) -> str:
    """The first few characters (province, city), the rest starred: 北京市朝阳区****."""
    keep = min(6, len(address) // 2)
    return address[:keep] + "****"
