"""Simple line icons as inline SVG (no icon or emoji font needed), and QR codes (segno):
template globals `icon(name, size=24, label=None)` and `qr(data)`."""

from __future__ import annotations

import segno
from markupsafe import Markup, escape

from carepoints.kit.templating import environment

PATHS: dict[str, str] = {
    'home': '<path d="M3 11l9-8 9 8"/><path d="M5 10v10h5v-6h4v6h5V10"/>',
    'calendar': '<rect x="3" y="5" width="18" height="16" rx="2"/><path d="M3 10h18M8 3v4M16 3v4"/>',
    'heart': '<path d="M12 20s-7-4.5-9-9a4.5 4.5 0 0 1 9-3 4.5 4.5 0 0 1 9 3c-2 4.5-9 9-9 9z"/>',
    'gift': (
        '<rect x="3" y="9" width="18" height="12" rx="1"/>'
        '<path d="M3 13h18M12 9v12M12 9c-2-4-6-4-6-1s6 1 6 1 6 2 6-1-4-3-6 1"/>'
    ),
    'user': '<circle cx="12" cy="8" r="4"/><path d="M4 21c1-4 4-6 8-6s7 2 8 6"/>',
    'speaker': '<path d="M4 9h4l5-4v14l-5-4H4z"/><path d="M16 9a4 4 0 0 1 0 6M18.5 6.5a8 8 0 0 1 0 11"/>',
    'clock': '<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>',
    'check': '<path d="M4 12l5 5L20 6"/>',
    'bell': '<path d="M6 16V11a6 6 0 0 1 12 0v5l2 2H4z"/><path d="M10 20a2 2 0 0 0 4 0"/>',
    'book': '<path d="M4 5a2 2 0 0 1 2-2h14v16H6a2 2 0 0 0-2 2z"/><path d="M4 19V5"/>',
    'star': '<path d="M12 3l2.8 5.7 6.2.9-4.5 4.4 1 6.2L12 17.3 6.5 20.2l1-6.2L3 9.6l6.2-.9z"/>',
    'family': (
        '<circle cx="8" cy="7" r="3"/>'
        '<circle cx="17" cy="9" r="2.5"/>'
        '<path d="M2 20c.5-4 3-6 6-6s5.5 2 6 6M14 20c.3-3 1.5-5 3-5s3 1.5 3.5 5"/>'
    ),
    'qr': (
        '<rect x="3" y="3" width="7" height="7"/>'
        '<rect x="14" y="3" width="7" height="7"/>'
        '<rect x="3" y="14" width="7" height="7"/>'
        '<path d="M14 14h3v3h-3zM18 18h3v3h-3zM14 20h2M20 14v2"/>'
    ),
    'chart': '<path d="M3 20h18"/><path d="M5 16l4-5 4 3 6-8"/>',
    'pill': '<rect x="3" y="9" width="18" height="6" rx="3" transform="rotate(-35 12 12)"/><path d="M9.5 8.5l5 7"/>',
    'camera': (
        '<rect x="3" y="7" width="18" height="13" rx="2"/>'
        '<circle cx="12" cy="13.5" r="3.5"/>'
        '<path d="M8 7l2-3h4l2 3"/>'
    ),
    'chat': '<path d="M4 5h16v11H9l-5 4z"/>',
    'shield': '<path d="M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z"/>',
    'list': (
        '<path d="M8 6h13M8 12h13M8 18h13"/>'
        '<circle cx="4" cy="6" r="1"/>'
        '<circle cx="4" cy="12" r="1"/>'
        '<circle cx="4" cy="18" r="1"/>'
    ),
    'warning': '<path d="M12 3l10 18H2z"/><path d="M12 10v5M12 18v.5"/>',
    'walk': '<circle cx="13" cy="4" r="2"/><path d="M9 21l2-6 3 2v4M11 15l1-6 4 3h3M12 9l-4 2-1 4"/>',
    'gear': (
        '<circle cx="12" cy="12" r="3"/>'
        '<path d="M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1L7 17M17 7l2.1-2.1"/>'
    ),
    'logout': '<path d="M10 4H4v16h6"/><path d="M14 8l4 4-4 4M8 12h10"/>',
    'coin': '<circle cx="12" cy="12" r="9"/><path d="M9 9h6M9 12h6M12 12v5M9.5 6.5L12 9l2.5-2.5"/>',
}


def icon(name: str, size: int = 24, label: str | None = None) -> Markup:
    """An icon; decorative (aria-hidden) unless it has a `label`."""
    a11y = (f'role="img" aria-label="{escape(label)}"' if label else 'aria-hidden="true" focusable="false"')
    return Markup(  # noqa: S704 - our own constant markup
        f'<svg class="cp-svg" width="{int(size)}" height="{int(size)}" viewBox="0 0 24 24" fill="none" '
                  f'stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" {a11y}>'
                  f'{PATHS.get(name, PATHS["star"])}</svg>')


def qr(data: str, scale: int = 5, label: str | None = None) -> Markup:
    """`data` as a scannable QR code (inline SVG with a viewBox, error correction M; never a Micro QR,
    which phone scanners such as WeChat's do not read)."""
    svg = segno.make_qr(data, error="m").svg_inline(scale=scale, border=2, dark="#000", light="#fff", omitsize=True)
    name = escape(label or data)
    return Markup(f'<div class="cp-qr" role="img" aria-label="{name}">{svg}</div>')  # noqa: S704 - segno's SVG


def install() -> None:
    environment().globals.update(icon=icon, qr=qr)
