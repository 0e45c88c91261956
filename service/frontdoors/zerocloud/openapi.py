"""The ZeroCloud door's part of the OpenAPI document: ``POST /v1/{account}``."""

from __future__ import annotations

from typing import Any

from service.http.openapi import (
    ENGINE,
    FRONT_SECURITY_SCHEMES,
    DoorApi,
    error,
    front_op,
    path_param,
)


def _paths() -> dict[str, Any]:
    return {
        "/v1/{account}": {
            "parameters": [path_param("account", "Any account name.")],
            "post": front_op(
                "exec",
                "Run a Python script or a ZeroVM-style tar and answer its stdout",
                {
                    "200": {"description": "The program's stdout, with `X-Nexe-*` headers."},
                    "400": error("A malformed script, tar or request (`invalid`)."),
                    "413": error("The body or an archive is larger than allowed (`too_large`)."),
                    "415": error("A content type other than the two below."),
                    "429": error("Queue full (`queue_full`), with `Retry-After`."),
                    "503": ENGINE,
                },
                "exec",
                parameters=[
                    {
                        "name": "X-Zerovm-Execute",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                requestBody={
                    "content": {
                        "application/python": {"schema": {"type": "string"}},
                        "application/x-tar": {"schema": {}},
                    }
                },
            ),
        }
    }


def openapi() -> DoorApi:
    return DoorApi(
        paths=_paths(),
        tags=[{"name": "exec", "description": "Synchronous script execution."}],
        security_schemes=FRONT_SECURITY_SCHEMES,
        label="exec",
    )
