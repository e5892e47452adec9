"""The pure cores of learning, without a database: quiz scoring and the review
content gate."""

from __future__ import annotations

from typing import Any

import pytest

from carepoints.engagement.learning import quiz, textgate

QUIZ: dict[str, Any] = {"pass_mark": 60, "questions": [
    {"id": "q1", "text": "1", "choices": ["a", "b", "c"], "correct": [1], "multi": False},
    {"id": "q2", "text": "2", "choices": ["a", "b", "c", "d"], "correct": [0, 2], "multi": True},
    {"id": "q3", "text": "3", "choices": ["a", "b"], "correct": [0], "multi": False},
    {"id": "q4", "text": "4", "choices": ["a", "b"], "correct": [1], "multi": False},
    {"id": "q5", "text": "5", "choices": ["a", "b"], "correct": [1], "multi": False},
]}


def test_all_right_scores_100_and_passes() -> None:
    s = quiz.score(QUIZ, [[1], [2, 0], [0], [1], [1]])
    assert (s.right, s.questions, s.score, s.pass_mark, s.passed) == (5, 5, 100, 60, True)


def test_exactly_the_pass_mark_passes_one_below_fails() -> None:
    at_mark = quiz.score(QUIZ, [[1], [0, 2], [0], [0], [0]])  # 3 of 5 = 60%
    assert (at_mark.right, at_mark.score, at_mark.passed) == (3, 60, True)
    below = quiz.score(QUIZ, [[1], [0, 2], [1], [0], [0]])  # 2 of 5 = 40%
    assert (below.right, below.score, below.passed) == (2, 40, False)


def test_a_multi_choice_question_needs_every_correct_choice_and_nothing_more() -> None:
    base = [[1], [0, 2], [0], [1], [1]]
    assert quiz.score(QUIZ, base).right == 5
    assert quiz.score(QUIZ, [[1], [0], [0], [1], [1]]).right == 4  # one missing
    assert quiz.score(QUIZ, [[1], [0, 2, 3], [0], [1], [1]]).right == 4  # one too many
    assert quiz.score(QUIZ, [[1], [], [0], [1], [1]]).right == 4  # none given


def test_rounding_down_never_turns_a_fail_into_a_pass() -> None:
    thirds: dict[str, Any] = {"pass_mark": 67, "questions": [
        {"id": f"q{i}", "text": "x", "choices": ["a", "b"], "correct": [0], "multi": False} for i in range(3)]}
    two = quiz.score(thirds, [[0], [0], [1]])  # 66.67% rounds down to 66
    assert (two.score, two.passed) == (66, False)
    at_66 = quiz.score({**thirds, "pass_mark": 66}, [[0], [0], [1]])
    assert (at_66.score, at_66.passed) == (66, True)


@pytest.mark.parametrize(("answers", "why"), [
    ([[1], [0, 2], [0], [1]], "5 answers expected, 4 given"),
    ([[1], [0, 2], [0], [1], [1], [0]], "5 answers expected, 6 given"),
    ([[3], [0, 2], [0], [1], [1]], "answer 1 names a choice"),
    ([[1], [0, 0], [0], [1], [1]], "answer 2 names a choice twice"),
    ([[0, 1], [0, 2], [0], [1], [1]], "question 1 takes one choice"),
])
def test_answers_that_do_not_fit_the_quiz_are_refused(answers: list[list[int]], why: str) -> None:
    with pytest.raises(quiz.AnswerShapeError, match=why):
        quiz.score(QUIZ, answers)


def test_the_public_quiz_has_no_answers() -> None:
    public = quiz.public(QUIZ)
    assert public["pass_mark"] == 60
    assert [q["id"] for q in public["questions"]] == ["q1", "q2", "q3", "q4", "q5"]
    assert all(set(q) == {"id", "text", "choices", "multi"} for q in public["questions"])


# --- the review content gate -------------------------------------------------------------

def test_normalise_drops_case_spaces_and_punctuation() -> None:
    assert textgate.normalise("  医生 很好!Very  GOOD, 谢谢。 ") == "医生很好verygood谢谢"
    assert textgate.normalise("!!! 。。。 ") == ""


def test_a_copy_with_different_punctuation_is_a_repeat() -> None:
    old = "医生非常耐心,解释得很清楚,护士也很热情,整个就诊过程很顺利,下次还会来这里看病。"
    new = "医生非常耐心 解释得很清楚 护士也很热情 整个就诊过程很顺利 下次还会来这里看病!"
    assert textgate.nearest_repeat(new, [("r1", old)], 0.8) == ("r1", 1.0)


def test_both_sides_of_the_threshold() -> None:
    old = "abcdefghij"
    new = "abcdefghXY"  # 8 of 10 match: ratio 0.8
    assert textgate.similarity(textgate.normalise(new), textgate.normalise(old)) == pytest.approx(0.8)
    found = textgate.nearest_repeat(new, [("r1", old)], 0.8)
    assert found is not None
    assert found[0] == "r1"
    assert found[1] == pytest.approx(0.8)
    assert textgate.nearest_repeat(new, [("r1", old)], 0.81) is None


def test_an_empty_text_is_never_a_repeat() -> None:
    assert textgate.nearest_repeat("", [("r1", "")], 0.5) is None
    assert textgate.nearest_repeat("。。", [("r1", "!!")], 0.5) is None


def test_the_first_close_earlier_text_is_named() -> None:
    earlier = [("r2", "完全不同的一段话,和这次没有关系"), ("r1", "挂号很方便,医生看得很仔细")]
    assert textgate.nearest_repeat("挂号很方便,医生看得很仔细!", earlier, 0.8) == ("r1", 1.0)
