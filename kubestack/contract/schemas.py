"""JSON schemas of the contract, exported to ``schemas/`` and snapshot-tested so changes show in review."""

from __future__ import annotations

import json
from pathlib import Path

from kubestack.contract.topics import TOPICS

SCHEMA_DIR = Path(__file__).with_name("schemas")


def schema_documents() -> dict[str, str]:
    """File name → JSON text of each topic's model schema, in a stable form."""
    docs = {}
    for spec in TOPICS:
        schema = spec.model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://kubestack.ai/schemas/{spec.name}.json"
        schema["x-topic"] = {"name": spec.name, "key": spec.key_doc, "partitions": spec.partitions}
        docs[f"{spec.name}.json"] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return docs


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, text in schema_documents().items():
        path = directory / filename
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing or differ from the models."""
    stale = []
    for filename, text in schema_documents().items():
        path = directory / filename
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(filename)
    return stale
