"""Deployment as code: Kibana saved objects, kibana-setup, the compose file, the Dockerfile."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import yaml

import mappings
from tests.conftest import ROOT, SHARED

NDJSON = ROOT / "mappings" / "kibana" / "vidx-events.ndjson"


def _objects() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text().splitlines() if line.strip()]


def _template_fields() -> set[str]:
    props = mappings.index_template("vidx-events", 384, "m")["template"]["mappings"]["properties"]
    out = set()
    for name, spec in props.items():
        out.add(name)
        for sub in spec.get("fields", {}):
            out.add(f"{name}.{sub}")
    return out


def test_ndjson_is_generated_from_the_builder() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kbuild", ROOT / "mappings" / "kibana" / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.render() == NDJSON.read_text(), "run: python mappings/kibana/build.py"


def test_saved_objects_parse_and_references_resolve() -> None:
    objs = _objects()
    keys = [(o["type"], o["id"]) for o in objs]
    assert len(keys) == len(set(keys))
    have = set(keys)
    (dv,) = [o for o in objs if o["type"] == "index-pattern"]
    assert dv["attributes"]["title"] == "vidx-events" and dv["attributes"]["timeFieldName"] == "@timestamp"
    (dash,) = [o for o in objs if o["type"] == "dashboard"]
    panels = json.loads(dash["attributes"]["panelsJSON"])
    assert len(panels) == 6
    titles = {p["title"] for p in panels}
    assert {"Events over time", "Top people", "Top locations", "Top objects", "Events per video"} <= titles
    ref_names = {r["name"] for r in dash["references"]}
    for r in dash["references"]:
        assert (r["type"], r["id"]) in have
    fields = _template_fields()
    for p in panels:
        attrs = p["embeddableConfig"]["attributes"]
        assert attrs["visualizationType"] == "lnsXY"
        for r in attrs["references"]:
            assert f"{p['panelIndex']}:{r['name']}" in ref_names
        for layer in attrs["state"]["datasourceStates"]["formBased"]["layers"].values():
            for col in layer["columns"].values():
                src = col.get("sourceField")
                assert src == "___records___" or src in fields, f"{p['title']}: {src} is not in the template"


def test_data_view_follows_a_custom_alias() -> None:
    from vidx.kibana import saved_objects

    objs = [json.loads(x) for x in saved_objects("films").splitlines()]
    assert next(o for o in objs if o["type"] == "index-pattern")["attributes"]["title"] == "films"


@pytest.fixture
def kibana() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            n = body.count(b'"type": "')
            out = json.dumps({"success": True, "successCount": n, "successResults": []}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()


def test_kibana_setup_imports_with_xsrf_and_overwrite(kibana: tuple[str, list[dict[str, Any]]]) -> None:
    from vidx.config import load_settings
    from vidx.kibana import import_saved_objects

    url, seen = kibana
    s = load_settings(kibana_url=url, es_username="elastic", es_password="pw")
    for _ in range(2):  # idempotent: overwrite, same ids
        assert import_saved_objects(s)["success"] is True
    def payload(r: dict[str, Any]) -> bytes:
        return r["body"].split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n--", 1)[0]

    assert len(seen) == 2 and payload(seen[0]) == payload(seen[1])
    req = seen[0]
    assert req["path"] == "/api/saved_objects/_import?overwrite=true"
    assert req["headers"]["kbn-xsrf"] == "true"
    assert req["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert req["headers"]["authorization"].startswith("Basic ")
    assert b'name="file"' in req["body"] and b"vidx-events-dashboard" in req["body"]


def test_kibana_unreachable_is_a_clear_error() -> None:
    from vidx.config import load_settings
    from vidx.kibana import KibanaError, import_saved_objects

    with pytest.raises(KibanaError, match="unreachable"):
        import_saved_objects(load_settings(kibana_url="http://127.0.0.1:9"), timeout=3)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_validates_against_the_compose_specification() -> None:
    schema_path = SHARED / "compose-spec" / "compose-spec.json"
    if not schema_path.exists():
        pytest.skip("../shared/compose-spec is not present")
    import jsonschema

    jsonschema.validate(_compose(), json.loads(schema_path.read_text()))


def test_compose_has_the_stack() -> None:
    c = _compose()
    svc = c["services"]
    assert {"elasticsearch", "kibana", "setup", "kibana-setup", "ingest", "search-ui", "vllm"} <= set(svc)
    es_env = svc["elasticsearch"]["environment"]
    assert es_env["xpack.security.enabled"] == "true" and "-Xms" in es_env["ES_JAVA_OPTS"]
    assert svc["kibana"]["environment"]["ELASTICSEARCH_USERNAME"] == "kibana_system"
    gpu = svc["ingest"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert svc["vllm"]["profiles"] == ["vllm"]
    for s in svc.values():
        for dep, cond in (s.get("depends_on") or {}).items():
            assert dep in svc
            assert cond["condition"] in ("service_healthy", "service_completed_successfully")
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in svc[dep], dep
    assert svc["ingest"]["environment"]["VIDX_ES_API_KEY_FILE"] == "/secrets/ingest.key"
    assert svc["search-ui"]["environment"]["VIDX_ES_API_KEY_FILE"] == "/secrets/ui.key"
    assert "elastic" not in json.dumps(svc["ingest"]["environment"]).replace("elasticsearch", "")


def test_dockerfile_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for pkg in ("vidx", "ingest", "search_ui", "mappings", "docker"):
        assert f"COPY {pkg} ./{pkg}" in text


def test_api_key_files_are_readable_by_the_app_user() -> None:
    """setup runs as root; ingest and search-ui run as the image's user and must read their keys."""
    import re

    uid = re.search(r"useradd [^\n]*--uid (\d+)", (ROOT / "Dockerfile").read_text())
    assert uid, "the Dockerfile creates the app user with a fixed uid"
    setup = (ROOT / "docker" / "setup.py").read_text()
    assert f'os.environ.get("VIDX_APP_UID", "{uid.group(1)}")' in setup
    assert "os.chown(path, APP_UID, APP_UID)" in setup
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name in ("ingest", "search-ui"):
        assert "user" not in services[name]  # they run as the image's user, the one the keys belong to
