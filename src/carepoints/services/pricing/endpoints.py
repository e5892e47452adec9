"""Cost estimate API (费用估算): the price catalogue, its packages and the estimate for patients
(their token), staff and the hospital's systems (pricing:read); the catalogue import and the
insurance settings for admins (pricing:write). An estimate is informational: the hospital's bill
is final."""

from __future__ import annotations

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile

from carepoints.kit.db import read_tx, write_tx
from carepoints.kit.time import utc_now
from carepoints.kit.web import JSON
from carepoints.security.deps import require
from carepoints.security.service import Principal
from carepoints.services.pricing import service
from carepoints.services.pricing.schemas import Category, EstimateCreate, SettingsUpdate

router = APIRouter(tags=["pricing"])

_read = require("pricing:read")
_write = require("pricing:write")
InstitutionId = Query(min_length=1, max_length=36)


@router.post("/pricing/catalogue/import")
def import_catalogue(request: Request, file: UploadFile = File(...),
                     institution_id: str = Form(min_length=1, max_length=36), dry_run: bool = False,
                     p: Principal = Depends(_write)) -> JSON:
    """Import an institution's price list (multipart: file, institution_id): CSV (UTF-8 with or
    without BOM, or GB18030) or Excel .xlsx, items and / or packages. `dry_run=true` answers what
    would be created, updated and deactivated with every row error and stores nothing; a real
    import is all or nothing (row errors → 422 `pricing.invalid_rows`, nothing stored) and the same
    file twice changes nothing."""
    content = service.read_limited(file.file, request.headers.get("content-length", ""))
    now = utc_now()
    if dry_run:
        with read_tx() as session:
            return JSON(service.import_catalogue(session, institution_id, content, p.actor(), now, dry_run=True))
    with write_tx() as session:
        return JSON(service.import_catalogue(session, institution_id, content, p.actor(), now, dry_run=False))


@router.get("/pricing/items")
def list_items(institution_id: str = InstitutionId, q: str | None = Query(None, max_length=50),
               category: Category | None = None, include_inactive: bool = False,
               limit: int = Query(20, ge=1, le=100), offset: int = Query(0, ge=0, le=100_000),
               _p: Principal = Depends(_read)) -> JSON:
    """The catalogue: items in effect today (all with `include_inactive`), searched by code or by a
    part of the Chinese or English name, by category, paginated (`next_offset`)."""
    with read_tx() as session:
        return JSON(service.items(session, institution_id, utc_now(), q=q, category=category.value if category
                                  else None, include_inactive=include_inactive, limit=limit, offset=offset))


@router.get("/pricing/packages")
def list_packages(institution_id: str = InstitutionId, include_inactive: bool = False,
                  _p: Principal = Depends(_read)) -> JSON:
    """The packages (套餐) with their items, list price and self-pay part today."""
    with read_tx() as session:
        return JSON(service.packages(session, institution_id, utc_now(), include_inactive=include_inactive))


@router.post("/pricing/estimate")
def estimate(body: EstimateCreate, _p: Principal = Depends(_read)) -> JSON:
    """Estimate chosen items ({code, qty}) and packages: each line's amount, insurance class and
    self-pay part (rounded half up to the fen), cheaper equivalents, and the totals. Nothing is
    stored. Unknown or inactive codes, or quantities outside 1–999 → 422 naming the codes."""
    with read_tx() as session:
        return JSON(service.estimate(session, body, utc_now()))


@router.get("/pricing/settings")
def get_settings(institution_id: str = InstitutionId, _p: Principal = Depends(_read)) -> JSON:
    """The institution's self-pay share per insurance class (basis points: 甲 0, 乙 its setting, 丙 10000)."""
    with read_tx() as session:
        return JSON(service.settings_doc(session, institution_id))


@router.put("/pricing/settings")
def put_settings(body: SettingsUpdate, p: Principal = Depends(_write)) -> JSON:
    """Set the institution's 乙 self-pay share (items with their own share keep it)."""
    with write_tx() as session:
        return JSON(service.set_settings(session, body, p.actor(), utc_now()))
