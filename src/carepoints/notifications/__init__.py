"""Notifications (DESIGN.md): delivery of the transactional outbox (the table and
its enqueue live in `kit.outbox`) to the in-app inbox, SMS, WeChat template
messages and signed webhooks, with retries, backoff and a dead-letter state,
per-patient preferences and quiet hours.

- `templates`: topic (or `topic.variant`) → audience, channels, zh/en wording;
  overridable by the hospital's YAML file (CAREPOINTS_NOTIFICATION_TEMPLATES).
- `dispatch`: outbox rows → inbox messages + delivery rows, one transaction per batch.
- `sending` + `channels`: leased claims, HTTP outside the transaction, results.
- `tasks.send_notifications`: the `send-notifications` job (the worker runs it every 10 s).
- `service`: inbox, preferences, webhooks, dead letters, and `once(session, kind, ref)`
  ("sent once" marks) for the domains that produce notices (reminders, expiring points)."""

from carepoints.notifications import retention as _retention  # noqa: F401  (trust.privacy) retention kind
