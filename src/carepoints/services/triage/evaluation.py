"""Measure a knowledge base against a set of described cases (tests/services/triage/cases.yaml,
bench/triage.py): red-flag recall and precision, department top-1 and top-3 accuracy, and the
cases each measure missed. Pure: the cases and the compiled knowledge in, a report out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from carepoints.services.triage import engine


@dataclass(frozen=True, slots=True)
class Case:
    text: str
    red_flags: frozenset[str] = frozenset()
    department: str | None = None
    also: frozenset[str] = frozenset()
    negated: bool = False
    age: int | None = None
    sex: str | None = None
    pregnant: bool | None = None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Case:
        return cls(str(doc["text"]), frozenset(doc.get("red_flags") or ()), doc.get("department"),
                   frozenset(doc.get("also") or ()), bool(doc.get("negated")), doc.get("age"), doc.get("sex"),
                   doc.get("pregnant"))


@dataclass
class Report:
    cases: int = 0
    red_flag_cases: int = 0
    negated_cases: int = 0
    department_cases: int = 0
    flagged: int = 0  # red-flag cases answered urgent (the safety property: recall)
    named: int = 0  # red-flag cases whose answer names every expected flag
    urgent: int = 0  # answers that were urgent
    urgent_right: int = 0  # urgent answers to red-flag cases
    top1: int = 0  # the first suggestion is the expected kind or an alternative
    top1_strict: int = 0  # the first suggestion is the expected kind
    top3: int = 0
    missed_flags: list[str] = field(default_factory=list)
    other_flag: list[str] = field(default_factory=list)  # urgent, with another flag than expected
    false_alarms: list[str] = field(default_factory=list)
    negated_fired: list[str] = field(default_factory=list)
    wrong_department: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.flagged / self.red_flag_cases if self.red_flag_cases else 1.0

    @property
    def precision(self) -> float:
        return self.urgent_right / self.urgent if self.urgent else 1.0

    @property
    def top1_accuracy(self) -> float:
        return self.top1 / self.department_cases if self.department_cases else 1.0

    @property
    def top1_strict_accuracy(self) -> float:
        return self.top1_strict / self.department_cases if self.department_cases else 1.0

    @property
    def top3_accuracy(self) -> float:
        return self.top3 / self.department_cases if self.department_cases else 1.0

    def lines(self) -> list[str]:
        return [
            f"cases {self.cases}: {self.red_flag_cases} red-flag, {self.negated_cases} negated, "
            f"{self.department_cases} department",
            f"red-flag recall     {self.recall:7.1%}  ({self.flagged}/{self.red_flag_cases} answered urgent; "
            f"the expected flag named in {self.named})",
            f"red-flag precision  {self.precision:7.1%}  ({self.urgent_right}/{self.urgent} urgent answers)",
            f"negated that fired  {len(self.negated_fired):7d}",
            f"department top-1    {self.top1_accuracy:7.1%}  ({self.top1}/{self.department_cases}; "
            f"expected kind exactly: {self.top1_strict_accuracy:.1%})",
            f"department top-3    {self.top3_accuracy:7.1%}  ({self.top3}/{self.department_cases})",
        ]


def evaluate(kb: engine.Knowledge, cases: Iterable[Case]) -> Report:
    report = Report()
    for case in cases:
        report.cases += 1
        got = engine.analyse(kb, case.text, age=case.age, sex=case.sex, pregnant=case.pregnant)
        fired = {f.id for f in got.red_flags}
        expected_urgent = bool(case.red_flags)
        if got.urgent:
            report.urgent += 1
            report.urgent_right += expected_urgent
        if expected_urgent:
            report.red_flag_cases += 1
            report.flagged += got.urgent
            report.named += case.red_flags <= fired
            if not got.urgent:
                report.missed_flags.append(f"{case.text} → not urgent")
            elif not case.red_flags <= fired:
                report.other_flag.append(f"{case.text} → {sorted(fired)}")
            continue
        if got.urgent:
            report.false_alarms.append(f"{case.text} → {sorted(fired)}")
        if case.negated:
            report.negated_cases += 1
            if got.urgent:
                report.negated_fired.append(case.text)
        if case.department is None:
            continue
        report.department_cases += 1
        kinds = [d.kind for d in got.departments]
        good = {case.department} | case.also
        if kinds and kinds[0] in good:
            report.top1 += 1
        if kinds and kinds[0] == case.department:
            report.top1_strict += 1
        if good & set(kinds[:3]):
            report.top3 += 1
        if not kinds or kinds[0] not in good:
            report.wrong_department.append(f"{case.text} → {kinds} (expected {case.department})")
    return report
