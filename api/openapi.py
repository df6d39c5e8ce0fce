"""OpenAPI 3.1 document built from the pydantic models in ``api.models``.

Each operation below names the models that validate its request and shape its responses;
their JSON schemas come straight from pydantic, so the document follows the code.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.models import (
    CreateJobGroupRequest,
    ErrorOut,
    JobGroupCreated,
    JobGroupOut,
    JobList,
    JobOut,
    ListJobsQuery,
)

REF = "#/components/schemas/{model}"

# (method, path, summary, request model, {status: response model}, path params, query model)
OPERATIONS: list[
    tuple[
        str,
        str,
        str,
        type[BaseModel] | None,
        dict[int, type[BaseModel] | None],
        list[str],
        type[BaseModel] | None,
    ]
] = [
    (
        "post",
        "/jobs/localization",
        "Create a job group",
        CreateJobGroupRequest,
        {
            202: JobGroupCreated,
            400: ErrorOut,
            401: ErrorOut,
            413: ErrorOut,
            422: ErrorOut,
            503: ErrorOut,
        },
        [],
        None,
    ),
    (
        "get",
        "/jobs/localization",
        "List jobs, newest first",
        None,
        {200: JobList, 400: ErrorOut, 401: ErrorOut},
        [],
        ListJobsQuery,
    ),
    (
        "get",
        "/jobs/localization/groups/{groupId}",
        "Get a job group",
        None,
        {200: JobGroupOut, 401: ErrorOut, 404: ErrorOut},
        ["groupId"],
        None,
    ),
    (
        "get",
        "/jobs/localization/{jobId}",
        "Get a job with its output",
        None,
        {200: JobOut, 401: ErrorOut, 404: ErrorOut},
        ["jobId"],
        None,
    ),
    ("get", "/healthz", "Process is up", None, {200: None}, [], None),
    (
        "get",
        "/readyz",
        "Temporal and the database are reachable",
        None,
        {200: None, 503: ErrorOut},
        [],
        None,
    ),
    ("get", "/openapi.json", "This document", None, {200: None}, [], None),
]


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models = {m for op in OPERATIONS for m in [op[3], *op[4].values()] if m is not None}
    _, schema = models_json_schema(
        [
            (m, "validation" if m is CreateJobGroupRequest else "serialization")
            for m in sorted(models, key=lambda m: m.__name__)
        ],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, request_model, responses, path_params, query_model in OPERATIONS:
        op: dict[str, Any] = {"summary": summary, "responses": {}}
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in path_params
        ]
        if query_model is not None:
            for name, field in query_model.model_fields.items():
                params.append(
                    {
                        "name": field.alias or name,
                        "in": "query",
                        "required": False,
                        "schema": query_model.model_json_schema()["properties"][
                            field.alias or name
                        ],
                    }
                )
        if path != "/healthz" and path != "/readyz" and path != "/openapi.json":
            op["security"] = [{"apiKey": []}]
        if params:
            op["parameters"] = params
        if request_model is not None:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": REF.format(model=request_model.__name__)}
                    }
                },
            }
        for code, model in responses.items():
            content = (
                {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
                if model is not None
                else {"application/json": {"schema": {"type": "object"}}}
            )
            op["responses"][str(code)] = {"description": str(code), "content": content}
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tolk",
            "version": "0.1.0",
            "description": "Durable async localization on Temporal.",
        },
        "paths": paths,
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
    }
