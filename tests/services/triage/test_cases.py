"""The triage test sets against the shipped knowledge base: every red-flag case answered urgent,
no negated case urgent, and department top-1 accuracy at least the file's threshold. The figures
are printed (bench/triage.py --cases FILE prints them too).

- cases.yaml (640): written alongside the knowledge base, batch by batch; batches 1-5 were
  measured once before tuning on them (README: Patient services -> triage guidance, and the
  comments in cases.yaml), batch 6 holds everyday complaints that must stay calm, batch 7 the
  families round 2 added, in other words than the held-out cases.
- heldout_dev.yaml (160) and heldout.yaml (160): written by outsiders who never saw the knowledge
  base. Their first figures say how the matcher does on phrasing it has not seen: heldout_dev
  red-flag recall 74.3%, top-1 81.1% (before round 1); heldout 85.7% (one negated case
  urgent), top-1 73.3% (after round 1, before round 2). Both were tuned on since: they are
  regression sets now, and the 100% they score is not a forecast.

Each THRESHOLDS entry is set a little below the accuracy measured on that file."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import yaml

from carepoints.services.triage import evaluation, knowledge

HERE = Path(__file__).parent
# measured (round 2): cases 100.0% top-1 (93.0% the expected kind exactly); heldout_dev 100.0% (95.6%);
# heldout 100.0% (90.0%); top-3 100% on each
THRESHOLDS = {"cases.yaml": 0.97, "heldout_dev.yaml": 0.97, "heldout.yaml": 0.97}
SIZES = {"cases.yaml": (600, 200, 50), "heldout_dev.yaml": (160, 70, 20), "heldout.yaml": (160, 70, 20)}


def _cases(name: str) -> list[evaluation.Case]:
    return [evaluation.Case.of(doc) for doc in yaml.safe_load((HERE / name).read_text(encoding="utf-8"))["cases"]]


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_the_set_is_big_and_varied_enough(name: str) -> None:
    cases = _cases(name)
    size, red_flags, negated = SIZES[name]
    assert len(cases) >= size
    assert sum(bool(c.red_flags) for c in cases) >= red_flags
    assert sum(c.negated for c in cases) >= negated
    assert len({c.text for c in cases}) == len(cases), "a case appears twice"
    flag_ids = {f.id for f in knowledge.shipped().red_flags}
    kind_codes = {k.code for k in knowledge.shipped().kinds}
    for c in cases:
        assert c.red_flags <= flag_ids, c.text
        assert c.department is None or ({c.department} | c.also) <= kind_codes, c.text
        assert bool(c.red_flags) != bool(c.department), f"a case expects a red flag or a department: {c.text}"


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_red_flag_recall_is_total_and_departments_are_accurate(name: str, pytestconfig: pytest.Config) -> None:
    report = evaluation.evaluate(knowledge.shipped_knowledge(), _cases(name))
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        print(f"\ntriage test set {name}:\n  " + "\n  ".join(report.lines()))
    assert report.recall == 1.0, report.missed_flags
    assert report.negated_fired == [], report.negated_fired
    assert report.top1_accuracy >= THRESHOLDS[name], report.wrong_department
    assert report.top3_accuracy >= report.top1_accuracy

