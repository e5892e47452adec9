"""Who is in which variant: a pure function of the experiment and patient ids.

`sha256(experiment_id ":" patient_id)` read as a number picks a bucket in [0, total weight)
and the bucket a variant (weights in order), so an assignment is the same in every run and
process and needs no table. Python's `hash()` is salted per process and is never used.

A patient is in an experiment while it runs *and* they hold a research consent: their
`Arm` is that intersection of time windows, judged at the event's `occurred_at` like the
rule version in force, so a late event is scored as it would have been on time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carepoints.experiments.schemas import RuleOverride


def bucket(experiment_id: str, patient_id: str, total: int) -> int:
    digest = hashlib.sha256(f"{experiment_id}:{patient_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % total


def pick(weights: Sequence[int], point: int) -> int:
    """The index of the variant whose share of [0, Σ weights) holds `point`."""
    edge = 0
    for i, w in enumerate(weights):
        edge += w
        if point < edge:
            return i
    raise ValueError("bucket outside the weights")


def variant_index(experiment_id: str, weights: Sequence[int], patient_id: str) -> int:
    return pick(weights, bucket(experiment_id, patient_id, sum(weights)))


@dataclass(frozen=True, slots=True, eq=False)
class Variant:
    code: str
    weight: int
    overrides: Mapping[str, RuleOverride]  # rule code -> override


@dataclass(frozen=True, slots=True, eq=False)
class Compiled:
    """A started experiment as the engine and the results view use it."""

    id: str
    code: str
    started_at: datetime
    stopped_at: datetime | None
    variants: tuple[Variant, ...]
    covers: frozenset[str]  # every rule some variant overrides

    @classmethod
    def of(cls, id_: str, code: str, started_at: datetime, stopped_at: datetime | None,
           variants: Iterable[Mapping[str, Any]]) -> Compiled:
        """From the stored document (`variants` as `ExperimentCreate` dumps them)."""
        built = tuple(Variant(v["code"], int(v["weight"]),
                              {o.rule: o for o in map(RuleOverride.model_validate, v.get("overrides") or ())})
                      for v in variants)
        return cls(id_, code, started_at, stopped_at, built, frozenset(r for v in built for r in v.overrides))

    def variant_of(self, patient_id: str) -> Variant:
        return self.variants[variant_index(self.id, [v.weight for v in self.variants], patient_id)]


@dataclass(frozen=True, slots=True, eq=False)
class Arm:
    """A patient's variant of one experiment over [starts_at, ends_at)."""

    experiment: str  # the experiment's code
    variant: str
    starts_at: datetime
    ends_at: datetime | None
    overrides: Mapping[str, RuleOverride]
    covers: frozenset[str]

    def holds(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)


def arms(experiments: Iterable[Compiled], patient_id: str,
         consents: Iterable[tuple[datetime, datetime | None]]) -> list[Arm]:
    """The patient's arms: each started experiment's window intersected with each of their
    research consents' [accepted_at, withdrawn_at)."""
    out: list[Arm] = []
    spans = list(consents)
    for exp in experiments:
        variant: Variant | None = None
        for accepted, withdrawn in spans:
            start = max(exp.started_at, accepted)
            ends = [t for t in (exp.stopped_at, withdrawn) if t is not None]
            end = min(ends) if ends else None
            if end is not None and end <= start:
                continue
            variant = variant or exp.variant_of(patient_id)
            out.append(Arm(exp.code, variant.code, start, end, variant.overrides, exp.covers))
    return out
