"""The web app assembled: FastAPI on uvicorn, the API router, the pages, static assets, error
handlers that answer JSON naming the field at fault (HTML for pages), and the headers
every response carries."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
import dagster as dg
import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from dropout_pipeline.storage.database import engine_for
from dropout_pipeline.web import api, pages, recommendations, uploads
from dropout_pipeline.web.auth import ApiError, LoginRequired, PageForbidden
from dropout_pipeline.web.course_cache import CourseCache
from dropout_pipeline.web.dagster_instance import DagsterGateway
from dropout_pipeline.web.run_cache import RunCache
from dropout_pipeline.web.settings import WebSettings
from dropout_pipeline.web.templating import STATIC_DIR, templates

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# /docs is Swagger UI served from the app itself (swagger-ui-bundle): it works where CDNs
# are blocked, and its page may run only its own scripts (and the one inline starter).
DOCS_ASSETS = "/docs-assets"
DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _json_error(status: int, detail: str, errors: list | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "errors": errors or []}, status_code=status, headers=headers)


def _html_error(request: Request, status: int, heading: str, message: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "error.html", {"session": None, "heading": heading, "message": message}, status_code=status)


def _field_errors(error: RequestValidationError) -> list[dict]:
    """Which field, where, and what is wrong with it; never the value sent (it may be a secret)."""
    found = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        where = location[0] if location else None
        field = ".".join(location[1:]) or where
        found.append({"field": field, "in": where, "message": item.get("msg", "invalid")})
    return found


def _allowed_methods(request: Request) -> list[str]:
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _child = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


class ResponseHeaders:
    """Every response's security and cache headers, and the request's reading connection
    (auth.reading) back to the pool once the response is sent. A plain ASGI middleware:
    Starlette's BaseHTTPMiddleware runs each response through an extra task and stream,
    a tenth of the app's time per request."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, state = scope["path"], scope.setdefault("state", {})  # request.state's dict, however the scope is copied

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if path == "/docs":
                    headers["Content-Security-Policy"] = DOCS_CSP
                if not path.startswith(("/static/", f"{DOCS_ASSETS}/")):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            connection = state.pop("connection", None)
            if connection is not None:  # read in autocommit: going back to the pool sends nothing to PostgreSQL or SQLite, so no thread is needed
                connection.close()


def create_app(settings: WebSettings, instance: dg.DagsterInstance) -> FastAPI:
    """The app on the product's database and Dagster's instance."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        yield
        app.state.dagster.close()

    app = FastAPI(
        title="dropout_pipeline",
        version="1",
        summary="Who may fail or drop out of a course, why, and what teachers did about it",
        description="Send `Authorization: Bearer <token>` (from `dropout-pipeline token create`). Teachers see the courses of their token's scope; admins see all and the models.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine_for(settings.database_url, pool_size=settings.database_connections)
    app.state.dagster = DagsterGateway(instance)
    app.state.run_cache = RunCache()
    app.state.course_cache = CourseCache()
    app.include_router(api.router)
    app.include_router(recommendations.router)
    app.include_router(uploads.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(STATIC_DIR)), name="static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url, title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError):
        if _wants_json(request):
            return _json_error(error.status, error.detail, error.errors, error.headers)
        return _html_error(request, error.status, "Not found" if error.status == 404 else "Cannot show this", error.detail.capitalize() + ".")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        errors = _field_errors(error)
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
        if _wants_json(request):
            return _json_error(422, detail, errors)
        return _html_error(request, 422, "That request is not valid", detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException):
        if error.status_code == 405:  # every method of the path, not only those of the first route that matched it
            return _json_error(405, "method not allowed", headers={"Allow": ", ".join(_allowed_methods(request))})
        if error.status_code == 400:  # a body that is not JSON (or not UTF-8) at all: malformed, like any other
            message = "the body is not valid JSON"
            return _json_error(422, message, [{"field": "body", "in": "body", "message": message}])
        if _wants_json(request):
            return _json_error(error.status_code, str(error.detail), headers=getattr(error, "headers", None))
        return _html_error(request, error.status_code, "Not found" if error.status_code == 404 else "Error", str(error.detail))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, error: LoginRequired):
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(error.next_path, safe='/')}", status_code=303)

    @app.exception_handler(PageForbidden)
    async def forbidden(request: Request, error: PageForbidden):
        return _html_error(request, 403, "Not allowed", error.message)

    app.add_middleware(ResponseHeaders)
    return app


def app_from_environment() -> FastAPI:
    """The app of one uvicorn worker of `serve --workers N`: settings from the environment."""
    from dropout_pipeline.storage.database import DEFAULT_DATA_DIR
    from dropout_pipeline.web.settings import settings_from_environment

    return create_app(settings_from_environment(DEFAULT_DATA_DIR), dg.DagsterInstance.get())
