"""The triage test set (cases.yaml, ≥ 150 colloquial descriptions) against the shipped knowledge
base: every red-flag case answered urgent, no negated case urgent, and department top-1
accuracy at least THRESHOLD. The figures are printed (bench/triage.py prints them too).

THRESHOLD is set a little below the accuracy measured on the whole set. The set includes three
batches written apart from the knowledge base and measured once before it was tuned on them
(README: Patient services → triage guidance); their first figures, not these, say how the
knowledge base does on phrasing it has not seen."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import yaml

from carepoints.services.triage import evaluation, knowledge

CASES = Path(__file__).with_name("cases.yaml")
THRESHOLD = 0.96  # measured: 100.0% top-1 (92.7% the expected kind exactly), 100.0% top-3


def _cases() -> list[evaluation.Case]:
    return [evaluation.Case.of(doc) for doc in yaml.safe_load(CASES.read_text(encoding="utf-8"))["cases"]]


def test_the_set_is_big_and_varied_enough() -> None:
    cases = _cases()
    assert len(cases) >= 150
    assert sum(bool(c.red_flags) for c in cases) >= 40
    assert sum(c.negated for c in cases) >= 10
    assert len({c.text for c in cases}) == len(cases), "a case appears twice"
    flag_ids = {f.id for f in knowledge.shipped().red_flags}
    kind_codes = {k.code for k in knowledge.shipped().kinds}
    for c in cases:
        assert c.red_flags <= flag_ids, c.text
        assert c.department is None or ({c.department} | c.also) <= kind_codes, c.text
        assert bool(c.red_flags) != bool(c.department), f"a case expects a red flag or a department: {c.text}"


def test_red_flag_recall_is_total_and_departments_are_accurate(pytestconfig: pytest.Config) -> None:
    report = evaluation.evaluate(knowledge.shipped_knowledge(), _cases())
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        print("\ntriage test set:\n  " + "\n  ".join(report.lines()))
    assert report.recall == 1.0, report.missed_flags
    assert report.negated_fired == [], report.negated_fired
    assert report.top1_accuracy >= THRESHOLD, report.wrong_department
    assert report.top3_accuracy >= report.top1_accuracy

