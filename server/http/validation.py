"""Request bodies and query strings, validated by the same pydantic models that document
them in ``/v1/openapi.json``. Bad input becomes a 400 problem naming the ``param``."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from quart import request
from quart_schema import document_querystring, document_request

from flint.errors import FlintError

F = TypeVar("F", bound=Callable[..., Any])


class Body(BaseModel):
    """Request bodies: exact JSON types (no "10" for 10) and no unknown fields."""
    model_config = ConfigDict(strict=True, extra="forbid")


class Query(BaseModel):
    """Query strings arrive as text, so they are parsed leniently, but unknown names are refused."""
    model_config = ConfigDict(extra="forbid")


# Tags of discriminated unions appear in error locations; they are not parameter names.
UNION_TAG = "union:"


def param_path(loc: tuple[Any, ...]) -> str | None:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before", "function-wrap") or str(part).startswith(
                ("tagged-union", "union[", UNION_TAG)):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or None


_CODES = {
    "missing": "parameter_missing",
    "extra_forbidden": "parameter_unknown",
    "json_invalid": "invalid_json",
    "json_type": "invalid_request_body",
    "model_type": "invalid_request_body",
    "model_attributes_type": "invalid_request_body",
}


def problem_from(error: ValidationError, *, where: str = "body") -> FlintError:
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    kind = first["type"]
    code = _CODES.get(kind)
    if code is None:
        code = "parameter_invalid_type" if kind.endswith("_type") or kind.endswith("_parsing") else "parameter_invalid"
    param = param_path(tuple(first["loc"]))
    if code == "invalid_request_body" and param is not None:
        code = "parameter_invalid_type"  # a nested field that should have been an object
    if kind == "missing":
        detail = f"Missing required parameter '{param}'."
    elif kind == "extra_forbidden":
        detail = f"Unknown parameter '{param}'."
    elif kind == "json_invalid":
        detail = "The request body is not valid JSON."
    elif param is None:
        detail = "The request body must be a JSON object." if where == "body" else first["msg"]
    else:
        detail = f"Invalid '{param}': {first['msg']}."
    listed = [{"param": param_path(tuple(e["loc"])), "message": e["msg"]} for e in errors[:20]]
    return FlintError(400, code, detail, param=param, extra={"errors": listed})


def _is_json() -> bool:
    mimetype = request.mimetype or ""
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


async def read_body(model: type[BaseModel], *, text_plain: bool = False) -> BaseModel:
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        raw = b"{}"  # an absent body is an empty object: required fields then say what is missing
    elif not (_is_json() or (text_plain and request.mimetype == "text/plain")):
        raise FlintError(415, "unsupported_media_type", "Send the request body as application/json.")
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise problem_from(error)


def json_body(model: type[BaseModel], *, text_plain: bool = False) -> Callable[[F], F]:
    """``text_plain``: also take JSON sent as text/plain, as navigator.sendBeacon must send it to
    stay a CORS "simple" request (no preflight, which a page being unloaded cannot wait for)."""
    def decorator(func: F) -> F:
        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, body=await read_body(model, text_plain=text_plain), **kwargs)
        return document_request(model)(wrapper)  # type: ignore[return-value]
    return decorator


class NoBody(Body):
    """Action endpoints take no parameters; an empty object is accepted."""


def no_body(func: F) -> F:
    @wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        await read_body(NoBody)
        return await func(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def query_args(model: type[BaseModel]) -> Callable[[F], F]:
    def decorator(func: F) -> F:
        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            data: dict[str, Any] = {}
            for name in request.args:
                values = request.args.getlist(name)
                if len(values) > 1:
                    raise FlintError(400, "parameter_invalid", f"'{name}' may be given once.", param=name)
                data[name] = values[0]
            try:
                parsed = model.model_validate(data)
            except ValidationError as error:
                raise problem_from(error, where="query")
            return await func(*args, query=parsed, **kwargs)
        return document_querystring(model)(wrapper)  # type: ignore[return-value]
    return decorator
