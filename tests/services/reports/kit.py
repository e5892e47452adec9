"""What the reports tests share: report payloads as the HIS / LIS sends them, the real Synthea
DiagnosticReports of the shared corpus as JSON pushes, and reads of the outbox and the care queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from carepoints.config import get_settings
from carepoints.engagement.care.models import CareAlert
from carepoints.kit.db import read_tx
from carepoints.kit.outbox import OutboxMessage
from carepoints.kit.time import utc_now
from carepoints.security import otp
from carepoints.services.reports.models import DiagnosticReport, DiagnosticResult

if TYPE_CHECKING:
    from tests.api_client import Api

SYNTHEA = (Path("/work/shared/testdata/fhir/synthea/samply-blaze-synthea-2.7.0")
           / "0f2074a0-4173-1a32-988f-5316d7f1cbbe.json")


def patient_token(pid: str) -> str:
    token, _ttl = otp.patient_token(pid, utc_now(), get_settings())
    return token


def report(pid: str, source_id: str = "LIS-1", **extra: Any) -> dict[str, Any]:
    """A blood count with one high value (computed from the range) and one sent as low."""
    doc: dict[str, Any] = {
        "patient": {"id": pid}, "source": "lis", "source_id": source_id, "category": "lab", "code": "58410-2",
        "code_system": "http://loinc.org", "display": "血常规 / CBC", "status": "final",
        "issued_at": "2026-11-02T08:30:00+08:00", "conclusion": "请结合临床", "performer": "检验科",
        "results": [
            {"code": "6690-2", "display": "白细胞计数", "value": 11.2, "unit": "10*9/L", "range_low": 3.5,
             "range_high": 9.5},
            {"code": "718-7", "display": "血红蛋白", "value": 110, "unit": "g/L", "range_low": 115,
             "range_high": 150, "flag": "L"},
            {"code": "777-3", "display": "血小板计数", "value": 210, "unit": "10*9/L", "range_low": 125,
             "range_high": 350},
            {"code": "5778-6", "display": "尿颜色", "value": "淡黄色", "range_text": "淡黄色"}]}
    doc.update(extra)
    return doc


def critical(pid: str, source_id: str = "LIS-K") -> dict[str, Any]:
    return report(pid, source_id, display="电解质 / Electrolytes", results=[
        {"code": "2823-3", "display": "血钾", "value": 6.9, "unit": "mmol/L", "range_low": 3.5, "range_high": 5.3,
         "flag": "HH"}])


def synthea_reports() -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(DiagnosticReport, its Observations) of a real Synthea transaction Bundle, those with results."""
    bundle = json.loads(SYNTHEA.read_text())
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    out = []
    for e in bundle["entry"]:
        res = e["resource"]
        if res["resourceType"] == "DiagnosticReport" and res.get("result"):
            out.append((res, [by_url[r["reference"]] for r in res["result"]]))
    return out


def as_json_push(pid: str, dr: dict[str, Any], observations: list[dict[str, Any]]) -> dict[str, Any]:
    """A Synthea report as the JSON API takes it (what a LIS adapter would send)."""
    results = []
    for o in observations:
        q = o.get("valueQuantity") or {}
        value = q.get("value", o.get("valueString") or o.get("valueCodeableConcept", {}).get("text"))
        results.append({"code": o["code"]["coding"][0]["code"], "display": o["code"].get("text")
                        or o["code"]["coding"][0]["display"], "value": value, "unit": q.get("unit")})
    coding = dr["code"]["coding"][0]
    return {"patient": {"id": pid}, "source": "synthea", "source_id": dr["id"], "category": "lab",
            "code": coding["code"], "code_system": coding.get("system"), "display": dr["code"].get("text")
            or coding["display"], "status": dr["status"], "issued_at": dr["issued"], "results": results}


def push(api: Api, doc: dict[str, Any], key: str | None = None) -> Any:
    return api.post("/reports", doc, key=key)


def outbox(topic: str, key: str | None = None) -> list[dict[str, Any]]:
    with read_tx() as session:
        stmt = select(OutboxMessage.topic, OutboxMessage.key, OutboxMessage.payload).where(OutboxMessage.topic == topic)
        if key is not None:
            stmt = stmt.where(OutboxMessage.key == key)
        return [dict(r) for r in session.connection().execute(stmt).mappings()]


def alerts(pid: str) -> list[dict[str, Any]]:
    with read_tx() as session:
        rows = session.connection().execute(select(CareAlert.id, CareAlert.kind, CareAlert.severity, CareAlert.status,
                                                   CareAlert.details).where(CareAlert.patient_id == pid))
        return [dict(r) for r in rows.mappings()]


def counts() -> tuple[int, int]:
    with read_tx() as session:
        conn = session.connection()
        return (len(conn.execute(select(DiagnosticReport.id)).all()),
                len(conn.execute(select(DiagnosticResult.id)).all()))
