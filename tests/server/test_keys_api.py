"""Keys and dependencies through a real ``stockade serve`` (``examples/keys``), on both stores."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import ROOT, Server

EXAMPLE = ROOT / "examples" / "keys" / "stockade.yaml"


def test_unique_keys_and_after_through_the_api(store_url: str, tmp_path: Path) -> None:
    server = Server(tmp_path / "srv", slots=0, config=EXAMPLE, database_url=store_url)
    try:
        http = server.client
        first = http.post("/api/v1/jobs", json={"task": "nightly"})
        again = http.post("/api/v1/jobs", json={"task": "nightly"})
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["unique_key"] == "nightly"
        days = [http.post("/api/v1/jobs", json={"task": "report", "input": {"day": d}})
                for d in ("mon", "mon", "tue")]  # fmt: skip
        assert [r.status_code for r in days] == [201, 200, 201]
        assert days[0].json()["id"] == days[1].json()["id"] != days[2].json()["id"]

        deploys = [
            http.post("/api/v1/jobs", json={"task": "deploy", "input": {"env": "prod"}}).json()
            for _ in range(2)
        ]
        assert [d["concurrency_key"] for d in deploys] == ["deploy-prod"] * 2
        assert deploys[0]["waiting"] is None
        assert deploys[1]["waiting"] == "concurrency key deploy-prod is at its limit 1"

        builds = [
            http.post("/api/v1/jobs", json={"task": "build", "input": {"branch": "main"}}).json()
            for _ in range(2)
        ]
        older = http.get(f"/api/v1/jobs/{builds[0]['id']}").json()
        assert (older["state"], older["reason"]) == ("cancelled", "superseded")
        assert older["error"] == f"superseded by job {builds[1]['id']}"

        unknown = http.post("/api/v1/jobs", json={"task": "notify", "after": ["0" * 19]})
        assert unknown.status_code == 422 and unknown.json()["field"] == "after"
        ids = [deploys[0]["id"], first.json()["id"]]
        made = http.post("/api/v1/jobs", json={"task": "notify", "after": ids, "after_any": True})
        assert made.status_code == 201
        shown = http.get(f"/api/v1/jobs/{made.json()['id']}").json()
        assert (shown["after"], shown["after_any"]) == (ids, True)
        assert shown["waiting"] == f"runs once jobs {', '.join(ids)} end"
    finally:
        server.stop()
