"""`vidx kibana-setup`: import the data view and dashboard into Kibana (idempotent)."""

from __future__ import annotations

import base64
import json
import logging
import ssl
import urllib.error
import urllib.request
import uuid
from typing import Any

import mappings
from vidx.config import Settings

log = logging.getLogger("vidx.kibana")


class KibanaError(RuntimeError):
    pass


def saved_objects(alias: str) -> str:
    """The NDJSON with the data view pointed at ``alias``."""
    lines = []
    for line in mappings.read_text(mappings.KIBANA_FILE).splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if obj["type"] == "index-pattern":
            # the alias itself: a wildcard would also match an old index kept by `reindex --keep-old`
            obj["attributes"]["title"] = alias
        lines.append(json.dumps(obj, sort_keys=True))
    return "\n".join(lines) + "\n"


def import_saved_objects(s: Settings, timeout: float = 30.0) -> dict[str, Any]:
    if not s.kibana_url:
        raise KibanaError("set VIDX_KIBANA_URL (e.g. http://localhost:5601)")
    boundary = uuid.uuid4().hex
    payload = saved_objects(s.es_index).encode()
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"vidx-events.ndjson\"\r\n"
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        f"{s.kibana_url}/api/saved_objects/_import?overwrite=true", data=body, method="POST",
        headers={"kbn-xsrf": "true", "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    user = s.kibana_username or s.es_username
    password = s.kibana_password or s.es_password
    if user and password is not None:
        token = base64.b64encode(f"{user}:{password.get_secret_value()}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    elif s.es_api_key is not None:
        req.add_header("Authorization", f"ApiKey {s.es_api_key.get_secret_value()}")
    ctx = ssl.create_default_context(cafile=str(s.es_ca_cert)) if s.es_ca_cert else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            result: dict[str, Any] = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode(errors="replace")
        raise KibanaError(f"Kibana at {s.kibana_url} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise KibanaError(f"Kibana at {s.kibana_url} is unreachable: {exc}") from exc
    if not result.get("success"):
        raise KibanaError(f"import failed: {json.dumps(result.get('errors', result))[:800]}")
    log.info("imported %s saved objects into Kibana", result.get("successCount"))
    return result
