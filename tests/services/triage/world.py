"""A hospital for the triage tests: the booking tests' Hospital (心内科 with two clinicians and
released sessions) plus departments named the way a real hospital names them, each with a
clinician, so that triage's name matching and clinician lists have something to find."""

from __future__ import annotations

from typing import Any

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.scheduling import service as sch
from carepoints.scheduling.schemas import ClinicianCreate, DepartmentCreate
from tests.pages.test_patient_booking import Hospital

_n = iter(range(10**6))


class TriageHospital(Hospital):
    """`departments[name] → id`, `doctors[name] → clinician index` (for `session(…, clinician=)`)."""

    def __init__(self, *names: tuple[str, str]) -> None:
        super().__init__()
        with read_tx() as s:
            entry = sch.catalogue_entry(s, "department", self.department)
        assert entry is not None
        self.institution = str(entry["institution_id"])
        self.departments: dict[str, str] = {"心内科": self.department}
        self.doctors: dict[str, int] = {"心内科": 0}
        for zh, en in names:
            self.add(zh, en)

    def add(self, zh: str, en: str, *, doctor: str | None = None) -> str:
        i = next(_n)
        with write_tx() as s:
            dept = sch.create_department(s, DepartmentCreate(institution_id=self.institution, code=f"t{i}",
                                                             name_zh=zh, name_en=en), utc_now())["id"]
            clinician = ClinicianCreate(department_id=dept, code=f"td{i}", name=doctor or f"{zh[:2]}医生",
                                        title="副主任医师")
            self.clinicians.append(sch.create_clinician(s, clinician, utc_now())["id"])
        self.departments[zh] = dept
        self.doctors[zh] = len(self.clinicians) - 1
        return str(dept)

    def open_session(self, department: str, days: int = 3) -> dict[str, Any]:
        return self.ahead(days, clinician=self.doctors[department])
