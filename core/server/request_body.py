"""A request's JSON body, read under a size limit.

The limit is enforced while the body arrives: a declared Content-Length
over it is refused before anything is read, and a chunked body is refused
as soon as the bytes received pass it, so a client cannot make the server
buffer more than the limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from .errors import ApiError, bad_request

DEFAULT_BODY_LIMIT = 4 * 1024 * 1024  # a long conversation is well under this


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is over the limit of {limit} bytes", code="request_too_large")


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise bad_request(f"Content-Length {declared!r} is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    if not body:
        raise bad_request("the request has no body: send a JSON object")
    try:
        data = json.loads(body)
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 text") from None
    except ValueError as err:
        raise bad_request(f"the request body is not valid JSON: {err}") from None
    except RecursionError:  # [[[[...]]]] deeper than the parser's recursion: the client's fault
        raise bad_request("the request body nests JSON deeper than Python's recursion limit") from None
    if not isinstance(data, dict):
        raise bad_request(f"the request body must be a JSON object, got {type(data).__name__}")
    return data
