"""Online consultation (在线咨询): health advice and service questions, never a diagnosis or a
prescription; text-and-image threads between a patient and a clinician, nurse or pharmacist
(named, or routed by department through a queue with a response-time target). The retention
kind `consult` registers when `service` is imported (the jobs registry imports it)."""
