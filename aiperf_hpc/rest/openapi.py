"""`/openapi.json` from the API's pydantic models, and `/docs`: Swagger UI served by the service itself.

The document is OpenAPI 3.0.3, because the Swagger UI we vendor (the `swagger-ui-bundle` package, 4.x)
renders 3.0 only; pydantic writes JSON Schema 2020-12, so `_to_openapi30` rewrites the few
constructs that differ (null in `anyOf` -> `nullable`, `examples` -> `example`, `const` -> `enum`).
The docs page loads nothing from outside: its scripts and styles come from /docs/assets, and its
Content-Security-Policy forbids every other origin.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from aiperf_hpc.rest.models import ClientGroup, ClientGroupCreate, ClientGroupList, ErrorBody, Health

API_PREFIX = "/api/v1"
DOCS_ASSETS = "/docs/assets"
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (ClientGroupCreate, "validation"),
    (ClientGroup, "serialization"),
    (ClientGroupList, "serialization"),
    (ErrorBody, "serialization"),
    (Health, "serialization"),
]


def swagger_ui_dir() -> Path:
    """The directory of Swagger UI's files (swagger-ui-bundle.js, swagger-ui.css, ...)."""
    import swagger_ui_bundle  # type: ignore[import-untyped]  # ships no type information

    return Path(swagger_ui_bundle.swagger_ui_path)


def openapi_document(version: str) -> dict[str, Any]:
    """The OpenAPI 3.0.3 description of every route of the service."""
    _, schemas = models_json_schema(_MODELS, ref_template="#/components/schemas/{model}")
    group = f"{API_PREFIX}/client-groups"
    one = f"{group}/{{id}}"
    id_parameter = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "aiperf-hpc service",
            "version": version,
            "description": (
                "Client groups: `aiperf-hpc profile` runs created, watched and stopped over HTTP. "
                "When the service has a token, every /api route needs `Authorization: Bearer TOKEN` "
                "(the Authorize button)."
            ),
        },
        "paths": {
            "/health": {"get": _operation("health", "Liveness, version and active client groups", _ok("Health"))},
            group: {
                "post": _operation(
                    "createClientGroup",
                    "Create and start a client group",
                    {
                        "201": _json("ClientGroup", "Created; `Location` names it"),
                        "401": _json("ErrorBody", "No or wrong bearer token"),
                        "422": _json("ErrorBody", "The body, or an option in it, is invalid; `loc` names the field"),
                    },
                    security=secured,
                    body="ClientGroupCreate",
                ),
                "get": _operation(
                    "listClientGroups", "Every client group, oldest first", _ok("ClientGroupList"), security=secured
                ),
            },
            one: {
                "parameters": [id_parameter],
                "get": _operation(
                    "getClientGroup",
                    "Status, progress, exit code and (once ended) the summary",
                    {**_ok("ClientGroup"), "404": _json("ErrorBody", "No such client group")},
                    security=secured,
                ),
                "delete": _operation(
                    "cancelClientGroup",
                    "Stop a run (SIGTERM, or scancel for slurm); it turns cancelled with partial results",
                    {
                        "202": _json("ClientGroup", "Stopping; poll until the status is cancelled"),
                        "404": _json("ErrorBody", "No such client group"),
                        "409": _json("ErrorBody", "It has already ended"),
                    },
                    security=secured,
                ),
            },
            f"{one}/metrics": {
                "parameters": [id_parameter],
                "get": _operation(
                    "getClientGroupMetrics",
                    "The running local run's live metrics, in Prometheus text format",
                    {
                        "200": {
                            "description": "Prometheus text",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "404": _json("ErrorBody", "No such client group"),
                        "409": _json("ErrorBody", "Not a running local run with live metrics"),
                        "502": _json("ErrorBody", "The run did not answer"),
                    },
                    security=secured,
                ),
            },
            f"{one}/results": {
                "parameters": [id_parameter],
                "get": _operation(
                    "getClientGroupResults",
                    "The run's profile_export.json",
                    {
                        "200": {
                            "description": "profile_export.json",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "404": _json("ErrorBody", "No such client group, or no results yet"),
                    },
                    security=secured,
                ),
            },
        },
        "components": {
            "schemas": _to_openapi30(schemas["$defs"]),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def docs_page() -> str:
    """The /docs HTML page (its start-up script is /docs/assets/init.js)."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>aiperf-hpc service API</title>"
        f"<link rel='stylesheet' href='{DOCS_ASSETS}/swagger-ui.css'></head>\n"
        "<body><div id='swagger-ui'></div>\n"
        f"<script src='{DOCS_ASSETS}/swagger-ui-bundle.js'></script>\n"
        f"<script src='{DOCS_ASSETS}/init.js'></script>\n</body></html>\n"
    )


DOCS_INIT_SCRIPT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
});
"""
"""`validatorUrl: null`: Swagger UI would otherwise load a badge from validator.swagger.io."""


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    security: list[dict[str, list[str]]] | None = None,
    body: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "responses": responses}
    if security is not None:
        operation["security"] = security
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return operation


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _ok(schema: str) -> dict[str, Any]:
    return {"200": _json(schema, "OK")}


def _to_openapi30(node: Any) -> Any:
    """A JSON Schema 2020-12 fragment (as pydantic writes it) rewritten for OpenAPI 3.0."""
    if isinstance(node, list):
        return [_to_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _to_openapi30(value) for key, value in node.items()}
    variants = node.get("anyOf")
    if isinstance(variants, list) and {"type": "null"} in variants:
        rest = [variant for variant in variants if variant != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            node["allOf"] = rest  # a $ref ignores its siblings in 3.0, so it is wrapped
        elif len(rest) == 1:
            node = {**rest[0], **node}
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("examples"), list) and node["examples"]:
        node["example"] = node.pop("examples")[0]
    return node
