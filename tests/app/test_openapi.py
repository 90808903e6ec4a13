"""The OpenAPI document: served, well-formed, and listing exactly the routes the app has."""

from __future__ import annotations

import re
from pathlib import Path

from jsonschema import Draft202012Validator

from noticeboard import openapi

ROOT = Path(__file__).resolve().parents[2]
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def test_the_document_is_served_as_json(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == openapi.document()


def test_every_route_is_documented_and_every_documented_route_exists(app):
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(m.lower() for m in rule.methods - IGNORED_METHODS)
    documented = {path: set(ops) for path, ops in openapi.document()["paths"].items()}
    assert routes == documented


def test_every_schema_is_valid_json_schema_and_every_reference_resolves():
    document = openapi.document()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    text = repr(document)
    for ref in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert ref in document["components"]["schemas"], ref
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
            params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert params == set(re.findall(r"{(\w+)}", path)), (method, path)


def test_the_docs_point_at_the_document():
    assert "/api/openapi.json" in (ROOT / "docs" / "architecture.rst").read_text()
