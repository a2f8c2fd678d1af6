"""Snapshot test: a change to the contract must come with regenerated schemas (`kubestack topics schemas`)."""

import json

from kubestack.contract.schemas import SCHEMA_DIR, schema_documents, stale_schemas
from kubestack.contract.topics import TOPICS


def test_committed_schemas_match_the_models() -> None:
    assert stale_schemas() == [], "contract changed: run `kubestack topics schemas` and review the diff"


def test_every_topic_has_a_schema_and_no_stray_files() -> None:
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.json")) == sorted(f"{s.name}.json" for s in TOPICS)


def test_schemas_name_their_topic_and_require_the_common_fields() -> None:
    for filename, text in schema_documents().items():
        schema = json.loads(text)
        assert schema["x-topic"]["name"] + ".json" == filename
        assert {"source", "resource"} <= set(schema["required"])
        assert {"event_id", "ts", "tenant"} <= set(schema["properties"])
