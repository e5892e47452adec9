"""Triage guidance (智能导诊) measured on the test set: red-flag recall and precision, department
top-1 and top-3 accuracy, over tests/services/triage/cases.yaml with the shipped knowledge base
(src/carepoints/services/triage/knowledge.yaml). Pure CPU, no database, a few seconds (most of
it jieba loading its dictionary once).

    .venv/bin/python bench/triage.py            # the figures
    .venv/bin/python bench/triage.py --misses   # and every case a measure missed
    .venv/bin/python bench/triage.py --cases other.yaml

Exits 1 when the red-flag recall is below 100% or a negated case fired."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from carepoints.services.triage import evaluation, knowledge

CASES = Path(__file__).resolve().parent.parent / "tests" / "services" / "triage" / "cases.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--misses", action="store_true", help="list the cases each measure missed")
    args = parser.parse_args()
    cases = [evaluation.Case.of(doc) for doc in yaml.safe_load(args.cases.read_text(encoding="utf-8"))["cases"]]
    started = time.perf_counter()
    report = evaluation.evaluate(knowledge.shipped_knowledge(), cases)
    elapsed = time.perf_counter() - started
    for line in report.lines():
        print(line)
    print(f"time                {elapsed:7.2f} s (jieba's dictionary included)")
    if args.misses:
        for title, items in (("missed red flags", report.missed_flags),
                             ("urgent, another flag named", report.other_flag), ("false alarms", report.false_alarms),
                             ("negated that fired", report.negated_fired),
                             ("wrong first department", report.wrong_department)):
            print(f"\n{title} ({len(items)}):")
            for item in items:
                print("  " + item)
    return 0 if report.recall == 1.0 and not report.negated_fired else 1


if __name__ == "__main__":
    sys.exit(main())
