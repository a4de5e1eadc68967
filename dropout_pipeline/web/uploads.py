"""Uploading a CSV of learner rows for analysis, admins only: `POST /api/v1/uploads` answers
the profile and scores as JSON; the page `/admin/uploads` shows them with their plots.

The body is read as it arrives and reading stops at MAX_UPLOAD_BYTES (413, and the
connection is closed rather than drained): a 200 MB upload costs the server at most the
limit, never the whole file. A declared Content-Length over the limit is refused before
anything is read. The file lives only
as long as its request: in memory, or in Starlette's spooled temporary file (unnamed, on
disk above 1 MB), closed when the analysis ends, also on error. Nothing is written to
the product's tables; the default models are read from model_registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from dropout_pipeline.analytics.upload import MAX_UPLOAD_BYTES, UploadRejected, analyse_upload, default_upload_models, too_large
from dropout_pipeline.storage.web_tables import Principal
from dropout_pipeline.web import upload_schemas
from dropout_pipeline.web.api import ERRORS, checked
from dropout_pipeline.web.auth import CSRF_FIELD, ApiError, PageForbidden, PageSession, api_principal, page_session, reading
from dropout_pipeline.web.pages import _render, _require_csrf
from dropout_pipeline.web.profile_charts import profile_charts, strongest_pairs

router = APIRouter()

FILE_FIELD = "file"
MAX_FORM_FIELDS = 4  # the page's form: the CSRF token; the API's: none
LISTED_ON_PAGE = 50  # the riskiest rows the page shows
# The rows the API answers with their reasons, riskiest first: every row of a 50,000-row file
# with its six reasons is 65 MB of JSON, so a client asks for as many as it needs.
DEFAULT_ANSWERED_ROWS, MAX_ANSWERED_ROWS = 1_000, 100_000
AnsweredRows = Annotated[int, Query(ge=0, le=MAX_ANSWERED_ROWS, description=f"how many of the riskiest scored rows to answer (at most {MAX_ANSWERED_ROWS:,}); the counts per level cover every row")]
STATUS = {"too_large": 413}  # every other refusal is 422
MULTIPART = "multipart/form-data"
# On a refusal sent before the body is read to its end: uvicorn then closes the connection
# rather than read (and throw away) the rest of a body that may be hundreds of MB.
CLOSE = {"Connection": "close"}
REQUEST_BODY = {
    "required": True,
    "content": {MULTIPART: {"schema": {
        "type": "object", "required": [FILE_FIELD],
        "properties": {FILE_FIELD: {"type": "string", "format": "binary", "description": f"a UTF-8 CSV of learner rows, at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"}},
    }}},
}
UPLOAD_ERRORS = {
    **{status: ERRORS[status] for status in (401, 403)},
    413: {"model": upload_schemas.UploadError, "description": "the body is larger than the limit"},
    415: {"model": upload_schemas.UploadError, "description": "the body is not a multipart form"},
    422: {"model": upload_schemas.UploadError, "description": "the file is not UTF-8, breaks its schema or holds formulas (line and column named)"},
}
Token = Annotated[Principal, Depends(api_principal)]
Session = Annotated[PageSession, Depends(page_session)]


def _refusal(rejected: UploadRejected) -> ApiError:
    """A refusal in the API's error shape, each problem with its column (or `file`) and line."""
    error = ApiError(STATUS.get(rejected.kind, 422), str(rejected), field=FILE_FIELD, location="body",
                     headers=CLOSE if rejected.kind == "too_large" else None)
    if rejected.problems:
        error.errors = [{"field": problem.column or FILE_FIELD, "in": "body", "message": problem.located(), "line": problem.line}
                        for problem in rejected.problems]
    return error


async def _within_limit(request: Request) -> AsyncIterator[bytes]:
    """The body as it arrives, stopped once it passes the limit."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > MAX_UPLOAD_BYTES:
            raise too_large()
        yield chunk


async def uploaded_form(request: Request) -> tuple[bytes, dict[str, str]]:
    """The uploaded file's bytes and the form's other fields."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise too_large()
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != MULTIPART:
        raise ApiError(415, f"send the file as {MULTIPART}, in the field `{FILE_FIELD}`", field=FILE_FIELD, location="body", headers=CLOSE)
    try:
        form = await MultiPartParser(request.headers, _within_limit(request), max_files=1, max_fields=MAX_FORM_FIELDS).parse()
    except MultiPartException as error:
        raise ApiError(422, f"the body is not a readable multipart form: {error.message}", field=FILE_FIELD, location="body", headers=CLOSE) from None
    try:
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile):
            raise ApiError(422, f"no file: send the CSV as the file field `{FILE_FIELD}`", field=FILE_FIELD, location="body")
        return await upload.read(), {name: value for name, value in form.multi_items() if isinstance(value, str)}
    finally:
        await form.close()


def _analysis(request: Request, data: bytes) -> dict:
    with reading(request) as connection:
        models = default_upload_models(connection)
    return analyse_upload(data, models)


@router.post(
    "/api/v1/uploads", response_model=upload_schemas.UploadAnalysis, responses=UPLOAD_ERRORS, openapi_extra={"requestBody": REQUEST_BODY},
    summary="Analyse an uploaded CSV of learner rows: checked, profiled, scored by the default models (admins)",
)
async def upload(request: Request, principal: Token, rows: AnsweredRows = DEFAULT_ANSWERED_ROWS) -> Response:
    """Nothing of the file is kept and no table is written: the answer is the analysis."""
    if not principal.is_admin:
        raise ApiError(403, "uploads are for admins: this token is a teacher's", headers=CLOSE)
    try:
        data, _fields = await uploaded_form(request)
        analysis = await run_in_threadpool(_analysis, request, data)
    except UploadRejected as rejected:
        raise _refusal(rejected) from None
    analysis["scores"]["rows"] = analysis["scores"]["rows"][:rows]
    return checked(upload_schemas.UploadAnalysis, analysis)


def _upload_page(request: Request, session: PageSession, status: int = 200, **context) -> HTMLResponse:
    return _render(request, "upload.html", session, status=status, limit_mb=MAX_UPLOAD_BYTES // (1024 * 1024), file_field=FILE_FIELD, **context)


def _require_admin_page(session: PageSession) -> None:
    if not session.principal.is_admin:
        raise PageForbidden("The upload page is for admins.")


@router.get("/admin/uploads", response_class=HTMLResponse, include_in_schema=False)
def upload_form(request: Request, session: Session) -> HTMLResponse:
    _require_admin_page(session)
    return _upload_page(request, session)


@router.post("/admin/uploads", response_class=HTMLResponse, include_in_schema=False)
async def upload_page(request: Request, session: Session) -> HTMLResponse:
    _require_admin_page(session)
    try:
        data, fields = await uploaded_form(request)
        _require_csrf(session, fields.get(CSRF_FIELD))
        analysis = await run_in_threadpool(_analysis, request, data)
    except UploadRejected as rejected:
        page = _upload_page(request, session, status=STATUS.get(rejected.kind, 422), rejected=rejected)
        page.headers.update(CLOSE if rejected.kind == "too_large" else {})
        return page
    except ApiError as refused:
        page = _upload_page(request, session, status=refused.status, refused=refused.detail)
        page.headers.update(refused.headers)
        return page
    profile, scores = analysis["profile"], analysis["scores"]
    return _upload_page(
        request, session, profile=profile, scores=scores, listed=scores["rows"][:LISTED_ON_PAGE],
        charts=profile_charts(profile), pairs=strongest_pairs(profile["correlations"]),
    )
