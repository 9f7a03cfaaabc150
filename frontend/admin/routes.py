"""GET /admin (the page), GET / (a redirect to it) and the page's files under /admin/static/.

The page and its files hold no data, so they are open paths (see core.security); every API
call the page makes carries the key the user typed, like any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
# Only this origin's own files run, nothing is fetched elsewhere, and the page cannot be framed:
# even a crawled page's text that slipped into markup could not load or run anything.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    # Relative, so it stays right behind a reverse proxy that adds a path prefix.
    return RedirectResponse("admin", status_code=307)


@router.get("/admin/")
async def admin_slash() -> RedirectResponse:
    # The page's links are relative to /admin; /admin/ would resolve them one level too deep.
    return RedirectResponse("../admin", status_code=308)


@router.get("/admin")
async def admin_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def static_mount() -> Mount:
    """/admin/static/: the page's CSS and JS modules."""
    return Mount("/admin/static", app=StaticFiles(directory=STATIC_DIR), name="admin-static")
