#!/usr/bin/env python3
"""One-shot setup for the compose stack (runs as the `elastic` superuser, only here):

1. waits for Elasticsearch;
2. sets the kibana_system password so Kibana can start;
3. creates two least-privilege API keys, written to /secrets: ingest (write to the
   vidx indices) and ui (read the alias);
4. installs the index template, index and alias (`vidx es-setup`).
Idempotent: existing key files are kept.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from elasticsearch import Elasticsearch

URL = os.environ["VIDX_ES_URL"]
ALIAS = os.environ.get("VIDX_ES_INDEX", "vidx-events")
SECRETS = Path(os.environ.get("SECRETS_DIR", "/secrets"))
es = Elasticsearch(URL, basic_auth=("elastic", os.environ["ELASTIC_PASSWORD"]),
                   ca_certs=os.environ.get("VIDX_ES_CA_CERT") or None, request_timeout=30)

for _attempt in range(120):
    try:
        if es.cluster.health(wait_for_status="yellow", timeout="5s")["status"] in ("yellow", "green"):
            break
    except Exception as exc:  # not up yet
        print(f"waiting for Elasticsearch: {exc}", flush=True)
    time.sleep(2)
else:
    sys.exit("Elasticsearch did not come up")

es.security.change_password(username="kibana_system", password=os.environ["KIBANA_PASSWORD"])
print("kibana_system password set", flush=True)

ROLES = {
    "ingest": {"vidx_ingest": {"cluster": ["monitor", "manage_index_templates"], "indices": [
        {"names": [f"{ALIAS}", f"{ALIAS}-*"], "privileges": ["create_index", "write", "read", "manage",
                                                           "view_index_metadata"]}]}},
    "ui": {"vidx_ui": {"cluster": ["monitor"], "indices": [
        {"names": [f"{ALIAS}", f"{ALIAS}-*"], "privileges": ["read", "view_index_metadata"]}]}},
}
# the app containers run as the image's unprivileged user; only it may read the keys
APP_UID = int(os.environ.get("VIDX_APP_UID", "1000"))
SECRETS.mkdir(parents=True, exist_ok=True)
for name, roles in ROLES.items():
    path = SECRETS / f"{name}.key"
    if path.exists() and path.read_text().strip():
        print(f"{path} exists; kept", flush=True)
    else:
        key = es.security.create_api_key(name=f"vidx-{name}", role_descriptors=roles)
        path.write_text(key["encoded"])
        print(f"API key for {name} written to {path}", flush=True)
    os.chown(path, APP_UID, APP_UID)
    path.chmod(0o600)

env = {**os.environ, "VIDX_ES_API_KEY_FILE": str(SECRETS / "ingest.key")}
sys.exit(subprocess.call(["vidx", "es-setup"], env=env))
