"""Events of a caller bound to institutions (ops.alliance): checked before they reach the
group-commit writer (whose thread does not see the request's scope), only for bound callers.

- a patient by `{id}` not linked to the caller's institutions → 404 `patients.not_found`;
- a patient by `{system, value}` whose system none of them issues → 403 `alliance.identifier_out_of_scope`;
- `attributes.institution` (an institution code) naming another institution → 403
  `alliance.institution_out_of_scope`; absent, it is stamped when the caller has exactly one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from carepoints.kit.errors import AppError
from carepoints.patients import institutions
from carepoints.security.errors import (
    IdentifierOutOfScopeError,
    InstitutionOutOfScopeError,
    PatientOutOfReachError,
)


def check(session: Session, items: Sequence[Any], bound: frozenset[str]) -> list[AppError | None]:
    """One answer per raw item: its scope error, or None (then its attributes may carry the
    stamped institution). Malformed items pass: ingest answers their validation error."""
    codes = institutions.codes_of(session, bound)
    systems = institutions.systems_of(session, bound)
    ids = [str(r["id"]) for r in (_ref(i) for i in items) if r is not None and isinstance(r.get("id"), str)]
    linked = institutions.linked_patients(session, ids, bound)
    only = next(iter(codes.values())) if len(codes) == 1 else None
    out: list[AppError | None] = []
    for item in items:
        ref = _ref(item)
        error: AppError | None = None
        if ref is not None:
            if isinstance(ref.get("id"), str):
                if ref["id"] not in linked:
                    error = PatientOutOfReachError()
            elif isinstance(ref.get("system"), str) and ref["system"] not in systems:
                error = IdentifierOutOfScopeError()
        attrs = item.get("attributes") if isinstance(item, dict) else None
        if error is None and isinstance(attrs, dict):
            claimed = attrs.get("institution")
            if claimed is None and only is not None:
                attrs["institution"] = only
            elif claimed is not None and claimed not in codes.values():
                error = InstitutionOutOfScopeError()
        elif error is None and isinstance(item, dict) and attrs is None and only is not None:
            item["attributes"] = {"institution": only}
        out.append(error)
    return out


def _ref(item: Any) -> dict[str, Any] | None:
    ref = item.get("patient") if isinstance(item, dict) else None
    return ref if isinstance(ref, dict) else None
