"""Experiments (A/B tests): deterministic assignment of patients to variants, each a set of rule
overrides the rules engine applies; an ethics approval reference and research consent are required."""
