"""The OpenAPI document is the API's reference: every field and parameter is described."""

from __future__ import annotations


def test_every_schema_property_has_a_description(app):
    schemas = app.openapi()["components"]["schemas"]
    missing = [
        f"{name}.{prop}"
        for name, schema in schemas.items()
        for prop, spec in schema.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert missing == []
    assert "HTTPValidationError" not in schemas  # errors are Problems


def test_every_parameter_has_a_description(app):
    missing = [
        f"{method.upper()} {path} {param['name']}"
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
        for param in operation.get("parameters", [])
        if not param.get("description")
    ]
    assert missing == []


def test_errors_are_documented_as_problems(app):
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status in ("401", "403", "404", "409", "422"):
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )


def test_docs_are_served(client):
    assert "swagger" in client.get("/docs").text.lower()
