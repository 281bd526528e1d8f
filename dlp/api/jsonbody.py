"""JSON request bodies read whatever their declared content type, with clear errors.

`curl -d '{"text": "..."}'` sends `Content-Type: application/x-www-form-urlencoded`,
and other clients send `text/plain` or nothing; FastAPI parses a body as JSON only when
it is declared `application/json`, so those callers got a 422 saying the body "should be
a valid dictionary". The JSON routes take their body through `JsonBody(Model)` instead:
the body is JSON text (UTF-8, or UTF-16/32 as RFC 8259 detection finds), whatever the
header says, and a body that is not gets a 422 naming why (not UTF-8, not JSON and
where, nested too deeply) instead of FastAPI's bare 400 "There was an error parsing the
body". The body is read after authentication (the route class checks the token first)
and under the `BodyLimit` cap.
"""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from dlp.api.errors import ApiError

__all__ = ["JsonBody", "json_body_doc"]

Model = TypeVar("Model", bound=BaseModel)

_MAX_ERRORS = 5


def _invalid(detail: str) -> ApiError:
    return ApiError(422, "invalid request", detail)


class JsonBody(Generic[Model]):
    """A route dependency: the request body parsed as JSON and validated as `model`."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model

    async def __call__(self, request: Request) -> Model:
        """The validated body, or a 422 `ApiError` saying what is wrong with it."""
        try:
            body = await request.body()
        except ClientDisconnect as exc:
            # Nobody reads the answer; it keeps a client leaving mid-body out of the
            # error log (it was logged as an internal error with a traceback).
            raise ApiError(400, "bad request", "the client went away before the body ended") from exc
        try:
            data: Any = json.loads(body)
        except UnicodeDecodeError as exc:
            raise _invalid(f"body: not JSON text in UTF-8 (byte {exc.start} is not)") from exc
        except json.JSONDecodeError as exc:
            raise _invalid(f"body: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
        except RecursionError as exc:
            raise _invalid("body: the JSON is nested too deeply") from exc
        except ValueError as exc:
            # Python's int conversion limit: a number of more than 4300 digits
            raise _invalid("body: the JSON holds a number with too many digits") from exc
        try:
            return self.model.model_validate(data)
        except ValidationError as exc:
            parts = []
            for err in exc.errors()[:_MAX_ERRORS]:
                where = ".".join(("body", *(str(p) for p in err["loc"])))
                parts.append(f"{where}: {err['msg']}")
            raise _invalid("; ".join(parts)) from exc


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The route's `openapi_extra`: the body `model` as JSON, required."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
