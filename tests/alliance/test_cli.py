"""`carepoints api-key create --institution` and `staff create --institution [--alliance]`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cli = Cli(tmp_path_factory.mktemp("alliance-cli"))
    cli.run("db", "upgrade")
    return cli.dir


@pytest.fixture
def cli(template: Path, tmp_path: Path) -> Cli:
    for name in ("cp.db", "carepoints.keys.json"):
        if (template / name).exists():
            shutil.copyfile(template / name, tmp_path / name)
    return Cli(tmp_path)


def _institution(cli: Cli, monkeypatch: pytest.MonkeyPatch, code: str) -> str:
    with cli.app(monkeypatch) as app:
        r = app.client.post("/api/v1/institutions", json={"code": code, "name_zh": "机构", "name_en": "Inst"},
                            headers=app.auth)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def test_api_key_bound_to_institutions(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _institution(cli, monkeypatch, "A"), _institution(cli, monkeypatch, "B")
    out = cli.run("api-key", "create", "--name", "his-a", "--institution", "A", "--institution", "B")
    lines = out.stdout.strip().splitlines()
    secret = lines[-1]
    assert secret.startswith("cpk_")
    assert all(secret not in line for line in lines[:-1])
    kid = lines[0].split()[2]
    assert sorted(r[0] for r in cli.query("SELECT institution_id FROM api_key_institutions WHERE key_id = ?",
                                          kid)) == sorted([a, b])
    failed = cli.run("api-key", "create", "--name", "his-z", "--institution", "Z", ok=False)
    assert "scheduling.institution_not_found" in failed.stderr + failed.stdout


def test_staff_bound_to_an_institution(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _institution(cli, monkeypatch, "A")
    cli.run("staff", "create", "--username", "desk.a", "--role", "frontdesk", "--password", "long enough pw",
            "--institution", "A")
    cli.run("staff", "create", "--username", "desk.w", "--role", "frontdesk", "--password", "long enough pw",
            "--institution", "A", "--alliance")
    cli.run("staff", "create", "--username", "desk.x", "--role", "frontdesk", "--password", "long enough pw")
    rows = {u: (i, bool(w)) for u, i, w in cli.query(
        "SELECT username, institution_id, alliance_wide FROM staff_users")}
    assert rows["desk.a"] == (a, False)
    assert rows["desk.w"] == (a, True)
    assert rows["desk.x"] == (None, False)
