"""The compare page (``serve --ui``): one HTML page with its script and style sheet, shipped in the package
(``ui/``), no build step and nothing fetched from elsewhere.

The page only calls the service's own API (``/indices``, ``/search`` with ``explain``), so it is held to the same
allow-list, limits and token as any client: the static files themselves hold no data and are served without a
token (``PATHS``, ``GuardConfig.public``); the page asks for the token when the API answers 401, keeps it in
memory and sends it as a bearer header, never storing it. A strict Content-Security-Policy allows nothing but
this origin's script, style and API.
"""
from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import Response

ASSETS = {"/ui": ("compare.html", "text/html; charset=utf-8"),
          "/ui/compare.js": ("compare.js", "text/javascript; charset=utf-8"),
          "/ui/compare.css": ("compare.css", "text/css; charset=utf-8")}
PATHS = frozenset(ASSETS)
HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # the page's address holds the query
    "cache-control": "no-cache",
}


def install(app: FastAPI) -> None:
    """Serve the page's files at ``PATHS`` (GET only, not in the OpenAPI schema)."""
    for path, (name, media_type) in ASSETS.items():
        body = (files(__package__) / "ui" / name).read_bytes()
        app.add_api_route(path, _static(body, media_type), methods=["GET"], include_in_schema=False)


def _static(body: bytes, media_type: str):
    async def asset() -> Response:
        return Response(body, media_type=media_type, headers=HEADERS)
    return asset
