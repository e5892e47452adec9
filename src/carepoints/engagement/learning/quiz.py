"""Quiz scoring: a pure function of the quiz and the answers (no I/O, no clock).

A question is right when the set of chosen indexes equals the set of correct ones
(all of them for a multiple-choice question, nothing more). The score is the
percentage of questions answered right, rounded down; the attempt passes when
`score >= pass_mark`, i.e. when `100 × right >= pass_mark × questions`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Score:
    right: int
    questions: int
    score: int  # percent, rounded down
    pass_mark: int  # percent
    passed: bool


class AnswerShapeError(ValueError):
    """The answers do not fit the quiz (count, or a choice that does not exist)."""


def check_shape(quiz: dict[str, Any], answers: Sequence[Sequence[int]]) -> None:
    questions = quiz["questions"]
    if len(answers) != len(questions):
        raise AnswerShapeError(f"{len(questions)} answers expected, {len(answers)} given")
    for n, (q, a) in enumerate(zip(questions, answers, strict=True)):
        if any(not 0 <= i < len(q["choices"]) for i in a):
            raise AnswerShapeError(f"answer {n + 1} names a choice the question does not have")
        if len(set(a)) != len(a):
            raise AnswerShapeError(f"answer {n + 1} names a choice twice")
        if not q.get("multi") and len(a) > 1:
            raise AnswerShapeError(f"question {n + 1} takes one choice")


def score(quiz: dict[str, Any], answers: Sequence[Sequence[int]]) -> Score:
    """Score `answers` (one list of choice indexes per question, in order) against `quiz`."""
    check_shape(quiz, answers)
    questions = quiz["questions"]
    right = sum(1 for q, a in zip(questions, answers, strict=True) if set(a) == set(q["correct"]))
    total = len(questions)
    mark = int(quiz["pass_mark"])
    return Score(right=right, questions=total, score=100 * right // total, pass_mark=mark,
                 passed=100 * right >= mark * total)


def public(quiz: dict[str, Any]) -> dict[str, Any]:
    """The quiz as a patient sees it: without the correct answers."""
    return {"pass_mark": quiz["pass_mark"],
            "questions": [{"id": q["id"], "text": q["text"], "choices": list(q["choices"]),
                           "multi": bool(q.get("multi"))} for q in quiz["questions"]]}
