"""Versioned Elasticsearch index template and Kibana saved objects (data files)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

TEMPLATE_FILE = "events.index-template.json"
KIBANA_FILE = "kibana/vidx-events.ndjson"


def read_text(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def index_template(alias: str, dims: int, embedding_model: str, shards: int = 1, replicas: int = 0) -> dict[str, Any]:
    """The template for indices behind ``alias``, with the vector size, shards and replicas filled in."""
    body: dict[str, Any] = json.loads(read_text(TEMPLATE_FILE))
    body["index_patterns"] = [f"{alias}-*"]
    body["template"]["settings"]["number_of_shards"] = shards
    body["template"]["settings"]["number_of_replicas"] = replicas
    mappings = body["template"]["mappings"]
    mappings["properties"]["embedding"]["dims"] = dims
    mappings["_meta"]["embedding_model"] = embedding_model
    mappings["_meta"]["dims"] = dims
    body["_meta"]["embedding_model"] = embedding_model
    return body


def schema_version() -> int:
    return int(json.loads(read_text(TEMPLATE_FILE))["_meta"]["schema_version"])
