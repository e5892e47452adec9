"""FHIR R4 ingest: Bundles and single resources from hospital systems become events."""
