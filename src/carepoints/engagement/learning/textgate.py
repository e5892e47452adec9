"""The review content gate: does a text nearly repeat one of the same patient's
earlier texts? Pure functions, no I/O.

Texts are compared after normalisation (NFKC, case folded, whitespace and
punctuation/symbols removed), with `difflib.SequenceMatcher`'s ratio
(2·matches / total length, 0…1). A text that normalises to nothing is never a
repeat (it cannot earn under the length rule anyway)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from difflib import SequenceMatcher


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LN")


def similarity(a: str, b: str) -> float:
    """Ratio of two already normalised texts."""
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def nearest_repeat(text: str, earlier: Iterable[tuple[str, str]], threshold: float) -> tuple[str, float] | None:
    """The first earlier `(id, text)` whose similarity to `text` is at least `threshold`,
    with that similarity; None when there is none."""
    new = normalise(text)
    if not new:
        return None
    for ref, old_text in earlier:
        old = normalise(old_text)
        matcher = SequenceMatcher(None, new, old, autojunk=False)
        # the cheap upper bounds first: most texts are nothing alike
        if not old or matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
            continue
        ratio = matcher.ratio()
        if ratio >= threshold:
            return ref, ratio
    return None
