"""The WebGME door's part of the OpenAPI document: blobs and the executor API."""

from __future__ import annotations

from typing import Any

from service.http.openapi import (
    ENGINE,
    FRONT_SECURITY_SCHEMES,
    NOT_FOUND,
    DoorApi,
    error,
    front_op,
    json_content,
    path_param,
)


def _op(op_id: str, summary: str, responses: dict[str, Any], **more: Any) -> Any:
    return front_op(op_id, summary, responses, "executor", **more)


def _paths() -> dict[str, Any]:
    blob_hash = path_param("hash", "The blob's SHA-1 (hex).")
    job_hash = path_param("hash", "The job's hash: the hash of its zip blob.")
    job = json_content("The job document.", {"type": "object"})
    return {
        "/rest/blob/createFile/{name}": {
            "parameters": [path_param("name", "The file's name.")],
            "post": _op(
                "createBlob",
                "Upload a file (raw body); the same content under the same name is one blob",
                {"200": json_content("The blob's metadata.", {"type": "object"})},
                requestBody={"content": {"application/octet-stream": {"schema": {}}}},
            ),
        },
        "/rest/blob/createMetadata": {
            "post": _op(
                "createMetadata",
                "Store a WebGME blob metadata document (an artifact); answers its hash",
                {
                    "200": json_content("`{<hash>: <metadata>}`.", {"type": "object"}),
                    "400": error("Not a metadata document (`invalid`)."),
                    "413": error("Over the token's storage quota or a size cap."),
                },
                requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
            ),
        },
        "/rest/blob/createMetadata/": {
            "post": _op(
                "createMetadataSlash",
                "Same as without the slash",
                {
                    "200": json_content("`{<hash>: <metadata>}`.", {"type": "object"}),
                    "400": error("Not a metadata document (`invalid`)."),
                    "413": error("Over the token's storage quota or a size cap."),
                },
                requestBody={"content": {"application/json": {"schema": {"type": "object"}}}},
            ),
        },
        "/rest/blob/metadata": {
            "get": _op("listMetadata", "Every blob this token sees", {"200": job}),
        },
        "/rest/blob/metadata/": {
            "get": _op("listMetadataSlash", "Every blob this token sees", {"200": job}),
        },
        "/rest/blob/view/{hash}": {
            "parameters": [blob_hash],
            "get": _op(
                "viewBlob",
                "A blob's content, shown inline (its own content type)",
                {"200": {"description": "Bytes."}, "404": NOT_FOUND},
            ),
        },
        "/rest/blob/view/{hash}/{path}": {
            "parameters": [blob_hash, path_param("path", "A file of the artifact.")],
            "get": _op(
                "viewBlobMember",
                "One file of an artifact, shown inline",
                {"200": {"description": "Bytes."}, "404": NOT_FOUND},
            ),
        },
        "/rest/executor/worker": {
            "get": _op("listWorkers", "External workers: none (`{}`)", {"200": job}),
        },
        "/rest/blob/metadata/{hash}": {
            "parameters": [blob_hash],
            "get": _op("blobMetadata", "A blob's metadata", {"200": job, "404": NOT_FOUND}),
        },
        "/rest/blob/download/{hash}": {
            "parameters": [blob_hash],
            "get": _op(
                "downloadBlob",
                "A blob's content",
                {"200": {"description": "Bytes."}, "404": NOT_FOUND},
            ),
        },
        "/rest/blob/download/{hash}/{path}": {
            "parameters": [blob_hash, path_param("path", "A file of the artifact or zip.")],
            "get": _op(
                "downloadBlobMember",
                "One file of a zip blob",
                {"200": {"description": "Bytes."}, "404": NOT_FOUND},
            ),
        },
        "/rest/executor/create/{hash}": {
            "parameters": [job_hash],
            "post": _op(
                "createJob",
                "Run the job of an uploaded zip (`executor_config.json` inside)",
                {"200": job, "404": NOT_FOUND, "429": error("Queue full."), "503": ENGINE},
            ),
        },
        "/rest/executor/info/{hash}": {
            "parameters": [job_hash],
            "get": _op("jobInfo", "A job's status (poll this)", {"200": job, "404": NOT_FOUND}),
        },
        "/rest/executor/cancel/{hash}": {
            "parameters": [job_hash],
            "post": _op("cancelJob", "Cancel a job", {"200": job, "404": NOT_FOUND}),
        },
        "/rest/executor/output/{hash}": {
            "parameters": [job_hash],
            "get": _op("jobOutput", "A finished job's output", {"200": job, "404": NOT_FOUND}),
        },
        "/rest/executor/": {
            "get": _op("listJobs", "Every job (`?status=` to filter)", {"200": job}),
        },
        "/rest/executor": {
            "get": _op("listJobsNoSlash", "Every job (`?status=` to filter)", {"200": job}),
        },
    }


def openapi() -> DoorApi:
    return DoorApi(
        paths=_paths(),
        tags=[{"name": "executor", "description": "Blobs and polled jobs."}],
        security_schemes=FRONT_SECURITY_SCHEMES,
        label="the executor",
    )
