"""Declare a JSON endpoint once: auth, request and response models, OpenAPI entry.

``@endpoint(bp, "/products", method="POST", body=ProductUpsert, response=UpsertResult,
auth="staff")`` registers the view, validates the body or query with the same pydantic
models that ``/openapi.json`` is generated from, and serialises what the view returns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import RequestEntityTooLarge

from warranty.auth import sessions as auth_sessions
from warranty.auth.credentials import bearer_role, check_public_key
from warranty.auth.roles import permission_of, require_permission, roles_with
from warranty.core.errors import DomainError, Unauthorized, ValidationFailed
from warranty.core.text import unstorable_text
from warranty.http.errors import UnsupportedMediaType
from warranty.http.ratelimit import LIMITED_ENDPOINTS
from warranty.http.request_limits import MAX_JSON_DEPTH, json_depth
from warranty.http.session import get_session

# "none" | "public" | "customer" (the store's public key with a customer token in
# X-Customer-Token, or a staff bearer token) | a permission of warranty.auth.PERMISSIONS
# ("read", "decide_claims", "transfer", "refund", "reports", "admin") or an old audience
# standing for one ("staff" = support level, "finance").
Auth = str
OPEN_AUDIENCES = ("none", "public", "customer")


class ErrorDetail(BaseModel):
    """An error's stable code and readable message."""

    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """Every error response of the API."""

    error: ErrorDetail


@dataclass
class Endpoint:
    """One registered JSON endpoint, as OpenAPI describes it."""

    path: str
    method: str
    summary: str
    tag: str
    auth: Auth
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...] = field(default_factory=tuple)
    beacon: bool = False
    name: str = ""  # the Flask endpoint, "<blueprint>.<view>"
    path_schemas: dict[str, dict] = field(default_factory=dict)  # default: a short string
    files: tuple[str, ...] = ()  # other media types of the success response (downloads)


REGISTRY: list[Endpoint] = []


def validation_problems(exc: ValidationError) -> list[dict]:
    """Pydantic's errors as ``[{"at": "lines.2.quantity", "message": ...}]``."""
    return [
        {"at": ".".join(str(part) for part in err["loc"]) or "(body)",
         "message": err["msg"].removeprefix("Value error, ")}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _fail(exc: ValidationError, where: str) -> ValidationFailed:
    """One ValidationFailed naming the first few problems."""
    problems = validation_problems(exc)
    summary = "; ".join(f"{p['at']}: {p['message']}" for p in problems[:3])
    return ValidationFailed(f"invalid {where}: {summary}", details=problems)


def _refuse_unstorable(data: Any) -> None:
    """PostgreSQL refuses NUL bytes and invalid Unicode: say so instead of failing later."""
    where = unstorable_text(data)
    if where:
        message = "NUL characters and unpaired surrogates are not allowed"
        raise ValidationFailed(f"invalid text at {where}: {message}", code="invalid_text",
                               details=[{"at": where, "message": message}])


_TOO_DEEP = object()


def parse_body(model: type[BaseModel], *, beacon: bool = False) -> BaseModel:
    """The request's JSON body validated against ``model``.

    ``beacon`` also accepts JSON sent as text/plain: navigator.sendBeacon cannot set a JSON
    content type without a CORS preflight.
    """
    if not request.is_json and not (beacon and request.mimetype == "text/plain"):
        raise UnsupportedMediaType("send a JSON body with Content-Type: application/json")
    raw = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A body without Content-Length (chunked) is read up to the limit and no further:
        # reaching it means there was more.
        raise RequestEntityTooLarge()
    try:
        data = json.loads(raw)
    except RecursionError:  # the parser's own limit, far past ours
        data = _TOO_DEEP
    except ValueError:
        data = None
    if data is None:
        raise DomainError("request body is not valid JSON", code="invalid_json")
    if data is _TOO_DEEP or json_depth(data) > MAX_JSON_DEPTH:
        raise DomainError(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels",
                          code="json_too_deep")
    _refuse_unstorable(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _fail(exc, "request body") from None


def parse_query(model: type[BaseModel]) -> BaseModel:
    """The query string validated against ``model`` (repeated keys become lists)."""
    raw: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        raw[key] = values if len(values) > 1 else values[0]
    # Query strings were already screened for unstorable text (errors_http, before_request).
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise _fail(exc, "query") from None


def staff_permission(auth: Auth, method: str) -> str:
    """The permission a staff bearer token needs on an endpoint (customer endpoints: reading
    with GET, acting for the customer otherwise)."""
    if auth == "customer":
        return "read" if method.upper() == "GET" else "decide_claims"
    return permission_of(auth)


def authenticate(auth: Auth) -> None:
    """Enforce the endpoint's audience; sets ``g.actor`` and ``g.role``."""
    settings = current_app.config["SETTINGS"]
    if auth == "none":
        g.actor, g.role = "anonymous", None
    elif auth == "public":
        key = request.headers.get("X-Warranty-Key") or request.args.get("key")
        check_public_key(key, settings.public_key)
        g.actor, g.role = "storefront", "storefront"
    elif auth == "customer" and not request.headers.get("Authorization"):
        check_public_key(request.headers.get("X-Warranty-Key"), settings.public_key)
        token = request.headers.get("X-Customer-Token")
        if not token:
            raise Unauthorized("send the customer's token in X-Customer-Token (or use a staff "
                               "bearer token)", code="missing_customer_token")
        row = auth_sessions.find(get_session(), token, "customer_api")
        if row is None:
            raise Unauthorized("this customer token is unknown, expired or revoked; get a new "
                               "one from POST /api/v1/customer-tokens",
                               code="invalid_customer_token")
        g.actor, g.role, g.customer_email = f"customer:{row.subject}", "customer", row.subject
    else:
        actor, role = bearer_role(session=get_session(),
                                  header=request.headers.get("Authorization"),
                                  master_token=settings.api_token)
        require_permission(role, staff_permission(auth, request.method))
        g.actor, g.role = actor, role


def endpoint(bp: Blueprint, rule: str, *, method: str = "GET", summary: str, auth: Auth,
             body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
             response: type[BaseModel] | None = None, status: int = 200,
             errors: tuple[int, ...] = (), beacon: bool = False,
             path_schemas: dict[str, dict] | None = None, files: tuple[str, ...] = ()):
    """Register a JSON view; it receives ``body=``/``query=`` and returns a model or dict.

    ``beacon=True`` accepts the body as text/plain JSON too (see ``parse_body``).
    ``path_schemas`` gives a path parameter's schema (e.g. an enum); ``files`` the media
    types the view may answer with instead of ``response``'s JSON.
    """

    if auth not in OPEN_AUDIENCES:
        permission_of(auth)  # an unknown audience fails at import, not at the first call

    def decorate(view):
        prefix = bp.url_prefix or ""
        REGISTRY.append(Endpoint(path=prefix + rule, method=method.lower(), summary=summary,
                                 tag=bp.name, auth=auth, body=body, query=query,
                                 response=response, status=status, errors=errors,
                                 beacon=beacon, name=f"{bp.name}.{view.__name__}",
                                 path_schemas=path_schemas or {}, files=files))

        @wraps(view)
        def wrapped(**path_args):
            authenticate(auth)
            kwargs = dict(path_args)
            if body is not None:
                kwargs["body"] = parse_body(body, beacon=beacon)
            if query is not None:
                kwargs["query"] = parse_query(query)
            result = view(**kwargs)
            if isinstance(result, Response):
                return result
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json")
            return jsonify(result), status

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
        return wrapped

    return decorate


_PARAM = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")
_STATUS_TEXT = {400: "Bad request", 401: "Missing or wrong credentials",
                403: "Not allowed for this role", 404: "Not found", 409: "Conflict",
                413: "Body too large", 415: "Not JSON", 422: "Invalid input",
                429: "Too many requests", 502: "Payment provider error"}


def openapi_document(*, title: str, version: str) -> dict:
    """The OpenAPI 3.1 document for every registered endpoint."""
    models: list[type[BaseModel]] = [ErrorResponse]
    for ep in REGISTRY:
        models += [m for m in (ep.body, ep.response) if m is not None]
    unique = list(dict.fromkeys(models))
    _, defs = models_json_schema([(m, "validation") for m in unique],
                                 ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})

    def ref(model: type[BaseModel]) -> dict:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict] = {}
    for ep in sorted(REGISTRY, key=lambda e: (e.path, e.method)):
        path = _PARAM.sub(r"{\1}", ep.path)
        op: dict[str, Any] = {"summary": ep.summary, "tags": [ep.tag],
                              "operationId": f"{ep.method}_{path}".replace("/", "_")
                              .replace("{", "").replace("}", "").replace("-", "_"),
                              "parameters": [], "responses": {}}
        for name in _PARAM.findall(ep.path):
            schema = ep.path_schemas.get(name, {"type": "string", "maxLength": 200})
            op["parameters"].append({"name": name, "in": "path", "required": True,
                                     "schema": schema})
        if ep.query is not None:
            qschema = ep.query.model_json_schema()
            required = set(qschema.get("required", []))
            for name, prop in qschema.get("properties", {}).items():
                op["parameters"].append({"name": name, "in": "query",
                                         "required": name in required, "schema": prop})
        if ep.body is not None:
            content = {"application/json": {"schema": ref(ep.body)}}
            if ep.beacon:
                content["text/plain"] = {"schema": ref(ep.body)}
            op["requestBody"] = {"required": True, "content": content}
        ok: dict[str, Any] = {"description": "OK"}
        if ep.response is not None:
            ok["content"] = {"application/json": {"schema": ref(ep.response)}}
        for media in ep.files:
            ok.setdefault("content", {})[media] = {
                "schema": {"type": "string", "contentMediaType": media}}
        op["responses"][str(ep.status)] = ok
        codes = set(ep.errors) | {400, 422}
        if ep.name in LIMITED_ENDPOINTS:
            codes.add(429)
        if ep.auth != "none":
            codes.add(401)
        if ep.auth not in OPEN_AUDIENCES:
            codes.add(403)
            op["security"] = [{"bearer": []}]
            op["x-roles"] = roles_with(ep.auth)
        elif ep.auth == "public":
            op["security"] = [{"publicKey": []}]
        elif ep.auth == "customer":
            codes.add(403)
            op["security"] = [{"publicKey": [], "customerToken": []}, {"bearer": []}]
            op["x-roles"] = ["customer", *roles_with(staff_permission(ep.auth, ep.method))]
        if ep.body is not None:
            codes |= {413, 415}
        for code in sorted(codes):
            op["responses"][str(code)] = {
                "description": _STATUS_TEXT.get(code, "Error"),
                "content": {"application/json": {"schema": ref(ErrorResponse)}}}
        paths.setdefault(path, {})[ep.method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "publicKey": {"type": "apiKey", "in": "header", "name": "X-Warranty-Key"},
                "customerToken": {"type": "apiKey", "in": "header", "name": "X-Customer-Token",
                                  "description": "a short-lived customer token from POST "
                                                 "/api/v1/customer-tokens (admin)"},
            },
        },
    }
