"""What a patient token reaches: its own patient and those who authorised it as
their proxy (代办), each with the authorisation's scopes.

`security.deps.require` checks the patient named in the path and then sets
the request's `Reach` in a context variable; services that resolve a patient
named in a body or query (`patients.service.id_for`) call `ensure`, so a
patient token never touches another patient's data. Out of reach answers 404
`patients.not_found` (ids cannot be probed); a proxied patient the scopes do
not cover for this permission answers 403.

Patient data lives above this layer (`patients`), so the app installs a
`PatientDirectory` at start (`install`): who a token reaches, which patients
use a phone, and how a login code leaves by SMS."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from carepoints.kit.errors import AppError, PermissionDeniedError
from carepoints.security.errors import IdentifierOutOfScopeError, PatientOutOfReachError
from carepoints.security.permissions import proxy_allows

SELF = "self"


@dataclass(frozen=True, slots=True)
class Reach:
    """The patients one request of a patient token may touch, for the route's permissions
    (a proxy needs scopes covering one of them)."""

    patient_id: str
    proxied: Mapping[str, frozenset[str]]  # patient id → proxy scopes (view, book, redeem)
    permissions: tuple[str, ...]

    def check(self, patient_id: str) -> None:
        """404 when `patient_id` is out of reach, 403 when the proxy scopes do not cover the permission."""
        if patient_id == self.patient_id:
            return
        scopes = self.proxied.get(patient_id)
        if scopes is None:
            raise PatientOutOfReachError()
        if not any(proxy_allows(scopes, p) for p in self.permissions):
            raise PermissionDeniedError(permission=" | ".join(self.permissions))

    def check_owners(self, owners: list[str]) -> None:
        """A record owned by `owners` (a household: its members) is in reach when one of them is
        (404 when none is, 403 when only proxied ones are and the scopes fall short)."""
        denied: AppError | None = None
        for owner in owners:
            try:
                self.check(owner)
                return
            except PermissionDeniedError as err:
                denied = err
            except PatientOutOfReachError:
                pass
        raise denied or PatientOutOfReachError()


_current: ContextVar[Reach | None] = ContextVar("carepoints_patient_reach", default=None)


def enter(reach: Reach | None) -> None:
    """Set the current request's reach (None for staff and keys: no restriction)."""
    _current.set(reach)


def current() -> Reach | None:
    return _current.get()


def ensure(patient_id: str, session: Session | None = None) -> None:
    """For a request of a patient token: the named patient must be in reach (404 / 403);
    for anyone else (staff, keys, jobs, CLI) nothing to check."""
    reach = _current.get()
    if reach is not None:
        reach.check(patient_id)
    if _institutions.get() is not None:  # (ops.alliance)
        ensure_institution(patient_id, session)


def ensure_named(patient_id: str | None, ref: Any = None, *, proxy_patient_id: str | None = None,
                 service_window: bool = False) -> None:
    """`ensure` for a request body before it leaves the request's context (a group-commit writer
    thread does not see it): the patient by id (a patient token names patients by id, not by
    an external reference), and a patient token may act only as itself, never as the service window."""
    if _institutions.get() is not None:  # (ops.alliance) a bound key or staff user
        _ensure_named_institution(patient_id, ref)
    reach = _current.get()
    if reach is None:
        return
    named = patient_id if patient_id is not None else getattr(ref, "id", None)
    if named is None:
        raise PatientOutOfReachError()
    reach.check(str(named))
    if service_window or (proxy_patient_id is not None and proxy_patient_id != reach.patient_id):
        raise PermissionDeniedError(permission=" | ".join(reach.permissions))


OwnerLookup = Callable[[Session, str], list[str]]
_owners: list[tuple[str, str, OwnerLookup]] = []


def register_owner(prefix: str, param: str, lookup: OwnerLookup) -> None:
    """Routes under `prefix` whose path parameter `param` names a patient's record: `lookup`
    answers its owners (patient ids; none when there is no such record)."""
    if all((p, q) != (prefix, param) for p, q, _ in _owners):
        _owners.append((prefix, param, lookup))


def owner_lookups(path: str, params: Mapping[str, Any]) -> list[tuple[str, OwnerLookup]]:
    """(record id, lookup) for every registered record the request path names."""
    return [(str(params[param]), lookup) for prefix, param, lookup in _owners
            if param in params and path.startswith(prefix)]


class PatientDirectory(Protocol):
    """What the security layer needs to know about patients (installed by the app)."""

    def reach(self, session: Session, patient_id: str, now: datetime) -> dict[str, frozenset[str]] | None:
        """Patients who authorised `patient_id` as proxy, with scopes; None when the
        patient may not log in (unknown, closed, deceased, erased)."""
        ...

    def choices(self, session: Session, phone: str) -> list[dict[str, str]]:
        """The patients who may log in with this phone: [{id, name (masked)}]."""
        ...

    def send_code(self, phone: str, text: str) -> None:
        """Send a login code by SMS (nothing when no gateway is configured)."""
        ...


class _NoDirectory:
    """Before the app installs one: a token reaches only its own patient; nobody can log in."""

    def reach(self, session: Session, patient_id: str, now: datetime) -> dict[str, frozenset[str]] | None:
        return {}

    def choices(self, session: Session, phone: str) -> list[dict[str, str]]:
        return []

    def send_code(self, phone: str, text: str) -> None:
        return None


_directory: list[PatientDirectory] = [_NoDirectory()]


def install(directory: PatientDirectory) -> None:
    _directory[0] = directory


def directory() -> PatientDirectory:
    return _directory[0]


# --- (ops.alliance) institution scope ------------------------------------------------------
# A key bound to institutions, or a staff user working at one, reaches only patients linked to
# them (patients.institutions) and names patients by external ids of their systems only. Unbound
# callers (the scope is None) are not checked at all: nothing is added to their requests.

@dataclass(slots=True)
class InstitutionScope:
    """The institutions (ids) one request may act for, with what it learnt so far (per request)."""

    institutions: frozenset[str]
    linked: dict[str, bool] = field(default_factory=dict)
    systems: frozenset[str] | None = None


class InstitutionDirectory(Protocol):
    """Which patients belong to which institutions (installed by the patients domain)."""

    def linked(self, session: Session, patient_id: str, institutions: frozenset[str]) -> bool:
        """Is the patient linked to one of `institutions`?"""
        ...

    def systems(self, session: Session, institutions: frozenset[str]) -> frozenset[str]:
        """The external-id systems `institutions` issue."""
        ...


class _NoInstitutions:
    """Before the patients domain installs one: a bound caller reaches nobody."""

    def linked(self, session: Session, patient_id: str, institutions: frozenset[str]) -> bool:
        return False

    def systems(self, session: Session, institutions: frozenset[str]) -> frozenset[str]:
        return frozenset()


_institution_directory: list[InstitutionDirectory] = [_NoInstitutions()]
_institutions: ContextVar[InstitutionScope | None] = ContextVar("carepoints_institution_scope", default=None)


def install_institutions(directory: InstitutionDirectory) -> None:
    _institution_directory[0] = directory


def enter_institutions(institutions: frozenset[str] | None) -> None:
    """Set the current request's institution scope (None: the whole alliance, no checks)."""
    _institutions.set(None if institutions is None else InstitutionScope(institutions))


def current_institutions() -> frozenset[str] | None:
    found = _institutions.get()
    return None if found is None else found.institutions


def _with_session(check: Callable[[Session], None], session: Session | None) -> None:
    if session is not None:
        check(session)
        return
    from carepoints.kit.db import read_tx  # a body checked before its transaction opens

    with read_tx() as own:
        check(own)


def ensure_institution(patient_id: str, session: Session | None = None) -> None:
    """For a bound caller: the patient must be linked to one of its institutions (404 otherwise,
    ids cannot be probed); one indexed query per patient and request."""
    found = _institutions.get()
    if found is None:
        return
    if patient_id not in found.linked:
        def check(s: Session) -> None:
            found.linked[patient_id] = _institution_directory[0].linked(s, patient_id, found.institutions)
        _with_session(check, session)
    if not found.linked[patient_id]:
        raise PatientOutOfReachError()


def ensure_institution_owners(owners: list[str]) -> None:
    """For a bound caller: a record owned by `owners` is in scope when one of them is (404 otherwise)."""
    for owner in owners:
        try:
            ensure_institution(owner)
            return
        except PatientOutOfReachError:
            pass
    if _institutions.get() is not None:
        raise PatientOutOfReachError()


def ensure_system(system: str, session: Session | None = None) -> None:
    """For a bound caller: an external reference must use one of its institutions' systems (403)."""
    found = _institutions.get()
    if found is None:
        return
    if found.systems is None:
        def check(s: Session) -> None:
            found.systems = _institution_directory[0].systems(s, found.institutions)
        _with_session(check, session)
    if system not in (found.systems or frozenset()):
        raise IdentifierOutOfScopeError()


def note_linked(patient_id: str) -> None:
    """A patient just linked to the request's institution (a bound enrolment) is in its scope."""
    found = _institutions.get()
    if found is not None:
        found.linked[patient_id] = True


def _ensure_named_institution(patient_id: str | None, ref: Any) -> None:
    """By id: linked to the caller's institutions; by {system, value}: one of their systems (the
    patient it names is checked again where it is resolved, `patients.service.id_for`)."""
    named = patient_id if patient_id is not None else getattr(ref, "id", None)
    if named is not None:
        ensure_institution(str(named))
        return
    system = getattr(ref, "system", None)
    if system is not None:
        ensure_system(str(system))
