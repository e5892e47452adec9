"""Notifications (DESIGN.md): delivery of the transactional outbox (the table and
its enqueue live in `kit.outbox`) to the in-app inbox, SMS, WeChat template
messages and signed webhooks, with retries, backoff and a dead-letter state,
per-patient preferences and quiet hours."""
