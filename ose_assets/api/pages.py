"""Server-rendered pages for the sales team, served by the API process over the same serving copy.

`/` the ranking (filters, search, paging, CSV), `/entreprise/{siren}` one company with its reasons and
evidence, `/bilan` the track record, `/connexion` the login form. French by default, English by a
cookie set from the switch in the header. With OSE_API_KEY set, every page needs the session cookie the
login form sets (HttpOnly, derived from the key: the key itself never travels in a URL or a cookie).
Jinja2 templates with autoescaping, one CSS file, no JavaScript; a Content-Security-Policy allows only
this server, so a page can make no request elsewhere.
"""

import csv
import hashlib
import hmac
import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ose_assets.api import page_data, queries
from ose_assets.api.export import formula_safe
from ose_assets.api.page_text import LANGUAGES, exclusion_text, translator
from ose_assets.api.reader import ServingUnavailable, ServingVersion
from ose_assets.scoring.reasons import SIGNAL_TYPE_LABELS
from ose_assets.settings import OSESettings, model_config

HERE = Path(__file__).parent
SESSION_COOKIE = "ose_session"
LANG_COOKIE = "ose_lang"
MAX_PAGE = 100
MAX_SEARCH_CHARS = 100
MAX_FORM_BYTES = 4_096
ANNUAIRE_URL = "https://annuaire-entreprises.data.gouv.fr/entreprise/{siren}"
HEADERS = {
    # Only this server: no CDN, no third-party request, no inline script; not framed elsewhere.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; script-src 'none'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class PageError(Exception):
    """Rendered as the error page with this status."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


class LoginRequired(Exception):
    """No valid session cookie while OSE_API_KEY is set: the login form, with 401."""


def session_token(api_key: str) -> str:
    """The session cookie's value: an HMAC of the key, so the cookie never holds the key itself."""
    return hmac.new(api_key.encode(), b"ose-pages-session", hashlib.sha256).hexdigest()


def local_path(value: str | None) -> str:
    """A path on this server to go back to after login or a language switch (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def request_lang(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE)
    return lang if lang in LANGUAGES else "fr"


@dataclass(frozen=True)
class RankingQuery:
    filters: dict[str, str]
    search: str | None
    limit: int
    page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def url(self, path: str = "/", **changes) -> str:
        params = {**self.filters, "q": self.search, "limit": self.limit, "page": self.page} | changes
        if params.get("limit") == page_data.PAGE_SIZES[0]:
            params.pop("limit")
        if params.get("page") == 1:
            params.pop("page")
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return f"{path}?{query}" if query else path


def install_pages(
    app: FastAPI, settings: OSESettings, current: Callable[[], Awaitable[ServingVersion]]
) -> None:
    """Add the pages and their static files to the API app; `current` gives the serving version."""
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), auto_reload=False
    )
    bands = sorted(model_config()["bands"])
    choices_cache = page_data.ChoicesCache()

    def here(request: Request) -> str:
        return local_path(request.url.path + (f"?{request.url.query}" if request.url.query else ""))

    def render(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
        lang = request_lang(request)
        t = translator(lang)
        body = templates.get_template(name).render(
            t=t,
            lang=lang,
            other_lang="en" if lang == "fr" else "fr",
            here=here(request),
            logged_in=settings.api_key is not None and SESSION_COOKIE in request.cookies,
            exclusion=lambda reason: exclusion_text(t, reason),
            signal_type=lambda code: SIGNAL_TYPE_LABELS.get(code, (code or "",) * 2)[LANGUAGES.index(lang)],
            **context,
        )
        return HTMLResponse(body, status_code, headers=HEADERS)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> HTMLResponse:
        return render(request, "error.html", exc.status_code, message=str(exc), info=None)

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: LoginRequired) -> HTMLResponse:
        return render(request, "login.html", 401, next=here(request), notice="login_required", info=None)

    async def page_version(request: Request) -> ServingVersion:
        if settings.api_key is not None:
            cookie = request.cookies.get(SESSION_COOKIE, "")
            if not hmac.compare_digest(cookie.encode(), session_token(settings.api_key).encode()):
                raise LoginRequired
        try:
            return await current()
        except ServingUnavailable as error:
            raise PageError(503, str(error)) from error

    Version = Annotated[ServingVersion, Depends(page_version)]
    router = APIRouter(include_in_schema=False)

    def ranking_query(request: Request, version: ServingVersion) -> tuple[RankingQuery, page_data.Choices]:
        params = request.query_params
        choices = choices_cache.get(version, bands, page_data.labels(settings.reference_dir))
        filters = {}
        for name in page_data.FILTER_COLUMNS:
            value = (params.get(name) or "").strip()
            if value:
                codes = choices.codes(name)
                if value not in codes:
                    raise PageError(422, f"unknown {name} {value!r}; accepted: {', '.join(codes[:30])}")
                filters[name] = value
        search = (params.get("q") or "").strip()[:MAX_SEARCH_CHARS] or None
        limit = params.get("limit") or str(page_data.PAGE_SIZES[0])
        page = params.get("page") or "1"
        if limit not in {str(size) for size in page_data.PAGE_SIZES} or not (
            page.isdigit() and 1 <= int(page) <= MAX_PAGE
        ):
            raise PageError(
                422,
                f"limit must be one of {page_data.PAGE_SIZES} and page 1 to {MAX_PAGE} "
                f"(got {limit!r}, {page!r})",
            )
        return RankingQuery(filters, search, int(limit), int(page)), choices

    def siren_search(search: str | None) -> str | None:
        """The SIREN typed in the search box (spaces allowed), or None for a name search."""
        compact = (search or "").replace(" ", "").replace(".", "")
        return compact if len(compact) == 9 and compact.isdigit() else None

    @router.get("/", response_class=HTMLResponse)
    def ranking_page(request: Request, version: Version) -> Response:
        query, choices = ranking_query(request, version)
        siren = siren_search(query.search)
        if siren:
            return RedirectResponse(f"/entreprise/{siren}", 303)
        lang = request_lang(request)
        rows, more = page_data.ranking(version, query.filters, query.search, query.limit, query.offset, lang)
        return render(
            request,
            "ranking.html",
            info=version.info,
            rows=rows,
            more=more,
            query=query,
            fields={
                name: choices.options(name, page_data.labels(settings.reference_dir), lang)
                for name in page_data.FILTER_COLUMNS
            },
            page_sizes=page_data.PAGE_SIZES,
            annuaire=ANNUAIRE_URL,
        )

    @router.get("/classement.csv")
    def ranking_csv(request: Request, version: Version) -> Response:
        """The ranking as shown (same filters, same page), one row per company, cells formula-safe."""
        query, _ = ranking_query(request, version)
        lang = request_lang(request)
        t = translator(lang)
        rows, _ = page_data.ranking(version, query.filters, query.search, query.limit, query.offset, lang)
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")  # ';': what French Excel expects
        columns = ("col_rank", "col_national_rank", "col_name", "col_siren", "col_score", "col_band",
                   "col_trend", "col_change", "col_reason", "col_evidence_date")  # fmt: skip
        writer.writerow([t(column) for column in columns])
        for row in rows:
            cells = (
                row["position"],
                row["rank"],
                row["name"],
                row["siren"],
                row["score"],
                row["band"],
                t(f"trend_{row['trend']}") if row["trend"] else t("new"),
                row["score_change"],
                row["reason"] or "",
                row["evidence_date"] or "",
            )
            writer.writerow([formula_safe(cell) for cell in cells])
        name = f"ose-{'classement' if lang == 'fr' else 'ranking'}-{version.info['as_of_date']}.csv"
        return Response(
            "\ufeff" + out.getvalue(),  # the BOM makes Excel read UTF-8
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"', **HEADERS},
        )

    @router.get("/entreprise/{siren}", response_class=HTMLResponse)
    def company_page(request: Request, siren: str, version: Version) -> Response:
        lang = request_lang(request)
        t = translator(lang)
        number = siren.replace(" ", "").replace(".", "")
        if not (len(number) == 9 and number.isdigit()):
            raise PageError(422, f"SIREN {siren!r} must have 9 digits")
        stored = version.stored_response(number, lang)
        if stored is not None:
            company = json.loads(stored)
        else:
            payloads, _ = queries.score_payloads(version, [number], lang)
            if not payloads:
                raise PageError(404, f"{t('not_found')}: SIREN {number} ({version.info['as_of_date']})")
            company = json.loads(json.dumps(payloads[0], default=str))
        labels = page_data.labels(settings.reference_dir)
        choices = choices_cache.get(version, bands, labels)
        age = page_data.company_age_years(version, number) if choices.has_age else None
        history = company["history"]
        chart = page_data.history_svg(
            history,
            t(
                "chart_label",
                first=history[-1]["as_of_date"] if history else "",
                last=history[0]["as_of_date"] if history else "",
                start=history[-1]["score"] if history else "",
                end=history[0]["score"] if history else "",
            ),
        )
        return render(
            request,
            "company.html",
            info=version.info,
            company=company,
            age=age,
            labels=labels,
            chart=chart,
            annuaire=ANNUAIRE_URL,
        )

    @router.get("/bilan", response_class=HTMLResponse)
    def track_record_page(request: Request, version: Version) -> Response:
        # The same read as GET /api/v1/track-record: the published track record, a few hundred rows.
        body = queries.track_record(version, None, request_lang(request))
        return render(request, "bilan.html", info=version.info, record=body)

    @router.get("/connexion", response_class=HTMLResponse)
    def login_form(request: Request, suite: str | None = None) -> Response:
        return render(request, "login.html", next=local_path(suite), notice=None, info=None)

    @router.post("/connexion")
    async def login(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise PageError(413, f"login form larger than {MAX_FORM_BYTES} bytes")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        target = local_path(form.get("next"))
        key = settings.api_key
        if key is None:
            return RedirectResponse(target, 303)
        if not hmac.compare_digest(form.get("key", "").encode(), key.encode()):
            return render(request, "login.html", 401, next=target, notice="wrong_key", info=None)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            SESSION_COOKIE,
            session_token(key),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    @router.post("/deconnexion")
    def logout() -> Response:
        response = RedirectResponse("/connexion", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @router.get("/langue/{lang}")
    def switch_language(lang: str, suite: str | None = None) -> Response:
        response = RedirectResponse(local_path(suite), 303)
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86_400, httponly=True, samesite="lax")
        return response

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
