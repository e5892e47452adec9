"""Engagement (DESIGN.md): the services that create the behaviour the programme
rewards — health check-ins, medication, education and lectures, questionnaires
and follow-ups, reviews, community, photo tasks, profile items, invites — and
the care-alert queue that makes the data clinically useful. Every action hands
its event to the spine (`events.service.ingest`) in the same transaction."""

from carepoints.engagement.health import observers as _observers

_observers.connect()

from carepoints.engagement.community import observers as _community  # noqa: E402

_community.connect()

from carepoints.engagement import privacy as _privacy  # noqa: E402

_privacy.connect()  # (trust.privacy) engagement records in the data download, plans stopped at erasure

from carepoints.engagement import merge as _merge  # noqa: E402

_merge.connect()  # (ops.merge) engagement records follow a merged record

from carepoints.engagement import closure as _closure  # noqa: E402

_closure.connect()  # (ops.identity) reminders, follow-ups and outreach alerts stopped at closure
