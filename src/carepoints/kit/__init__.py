"""Domain-agnostic building blocks: database, errors, ids, time, outbox."""
