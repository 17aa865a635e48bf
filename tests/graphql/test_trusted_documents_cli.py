"""`quanyi trusted-documents`: operators register an app's documents from its build, as files or a manifest."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from services.core.database import Database
from tests.graphql.conftest import Keys

ROOT = Path(__file__).resolve().parents[2]


async def quanyi(settings: Settings, *args: str | Path) -> tuple[int, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("QUANYI_")}
    env["QUANYI_DATABASE_URL"] = settings.database_url
    env["QUANYI_SECRET_KEY"] = base64.urlsafe_b64encode(settings.secret_key).decode()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from gateway import main; main()", *map(str, args),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


def manifest(*bodies: str, ids: list[str] | None = None) -> str:
    operations = [{"id": (ids or [])[n] if ids else hashlib.sha256(body.encode()).hexdigest(), "name": f"Op{n}",
                   "type": "query", "body": body} for n, body in enumerate(bodies)]
    return json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations})


async def post(settings: Settings, query: str, key: str | None = None) -> int:
    app = create_app(replace(settings, trusted_documents="enforce"))
    async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://q") as http:
        headers = {"accept": "application/graphql-response+json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        return (await http.post("/graphql", json={"query": query}, headers=headers)).status_code


async def test_a_manifest_and_a_document_file_are_trusted_for_every_caller(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    from_manifest, from_file = "query FromManifest { channels { code } }", "query FromFile { channels { name } }"
    (tmp_path / "app.json").write_text(manifest(from_manifest))
    (tmp_path / "page.graphql").write_text(from_file)

    code, out = await quanyi(settings, "trusted-documents", tmp_path / "app.json", tmp_path / "page.graphql")

    assert (code, out.splitlines()[-1]) == (0, "2 documents trusted for every caller")
    assert (await post(settings, from_manifest), await post(settings, from_file)) == (200, 200)


async def test_for_a_key_only_that_key_runs_them(settings: Settings, db: Database, keys: Keys, tmp_path: Path) -> None:
    document = "query ForTaobao { channels { code } }"
    (tmp_path / "taobao.graphql").write_text(document)
    prefix = keys.taobao.split("_")[1]

    code, out = await quanyi(settings, "trusted-documents", tmp_path / "taobao.graphql", "--key", prefix)

    assert (code, out.splitlines()[-1]) == (0, f"1 documents trusted for the key {prefix}")
    assert (await post(settings, document, keys.taobao), await post(settings, document, keys.b2b)) == (200, 400)


async def test_a_manifest_with_a_false_id_or_a_broken_document_registers_nothing(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    honest = "query Honest { channels { code } }"
    (tmp_path / "forged.json").write_text(manifest(honest, "query Other { channels { name } }", ids=[
        hashlib.sha256(honest.encode()).hexdigest(), hashlib.sha256(honest.encode()).hexdigest()]))
    (tmp_path / "broken.graphql").write_text("query Broken { channels { nope } }")

    code, out = await quanyi(settings, "trusted-documents", tmp_path / "forged.json", tmp_path / "broken.graphql")

    assert code == 1
    assert out.splitlines()[-3:] == [
        f"{tmp_path / 'forged.json'}: operation 1: its id is not the SHA-256 of its body",
        f"{tmp_path / 'broken.graphql'}: does not validate: Cannot query field 'nope' on type 'Channel'. "
        "Did you mean 'code' or 'name'?",
        "nothing was registered",
    ]
    assert await post(settings, honest) == 400


async def test_an_unknown_key_is_refused(settings: Settings, db: Database, tmp_path: Path) -> None:
    (tmp_path / "q.graphql").write_text("query Q { channels { code } }")

    code, out = await quanyi(settings, "trusted-documents", tmp_path / "q.graphql", "--key", "0000000000")

    assert (code, out.strip()) == (2, "quanyi: no active key with the prefix '0000000000'")
