"""Admissions and procedures: admission booking (住院预约) on a ward's beds per day, elective and
day surgery (择期 / 日间手术) on an operating room's day capacity, and pre-visit exams (预就诊): an exam
and the follow-up visit after its results, booked through scheduling."""
