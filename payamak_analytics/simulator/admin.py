"""The simulator's admin endpoints (`/_sim/...`, served only with `--admin`).

Every parameter is read and checked before anything changes: a value that is not finite, out
of range, unknown or repeated gets 400 with a one-line reason, and the state stays as it was.

    GET    /_sim/truth?username=demo&batches=1&numbers=0   what a correct sync must reproduce
    POST   /_sim/clock?advance=SECONDS                    move the simulated clock forward
    POST   /_sim/switch?system_updating=1&webservice_disabled=0
    POST   /_sim/dark?seconds=S[&documents=1]  /  DELETE /_sim/dark  SOAP calls (and the WSDL) answer 503
    POST   /_sim/forget?batch_id=N&times=K                GetBatchDelivery answers -2 the next K times
    POST   /_sim/incident?operator=MCI&status=6&rate=0.3[&line=50001234]  /  DELETE /_sim/incident
    POST   /_sim/replies?batch_id=N&share=0.2[&text=...]  that share of a run-time send's recipients
           write back to its line from now on, a minute apart (default: opt-out words, لغو and 11)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..dates import TEHRAN
from ..errors import InputError
from ..i18n import latin_digits
from .world import World

WHOLE = re.compile(r"[+-]?\d{1,19}")
TEXT_PLAIN = [("Content-Type", "text/plain; charset=utf-8")]


def _refuse(text: str) -> InputError:
    return InputError(text, "مقدار نامعتبر برای شبیه ساز")


def number(name: str, text: str) -> float:
    try:
        value = float(latin_digits(text).strip())
    except ValueError:
        raise _refuse(f"{name} must be a number, not {text[:40]!r}") from None
    if not math.isfinite(value):
        raise _refuse(f"{name} must be a finite number, not {text[:40]!r}")
    return value


def whole(name: str, text: str) -> int:
    cleaned = latin_digits(text).strip()
    if not WHOLE.fullmatch(cleaned):
        raise _refuse(f"{name} must be a whole number, not {text[:40]!r}")
    return int(cleaned)


def flag(name: str, text: str) -> bool:
    found = {"1": True, "true": True, "0": False, "false": False}.get(text.strip().casefold())
    if found is None:
        raise _refuse(f"{name} must be 1, 0, true or false, not {text[:40]!r}")
    return found


def word(name: str, text: str) -> str:
    if not text.strip():
        raise _refuse(f"{name} must not be empty")
    return text.strip()


@dataclass(frozen=True)
class Param:
    read: Callable[[str, str], object]
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    params: dict[str, Param]
    run: Callable[..., dict]


def _clock_answer(world: World) -> dict:
    now = world.clock.now()
    return {"clock": datetime.fromtimestamp(now, TEHRAN).isoformat(), "epoch": now}


def _advance(world: World, advance: float = 0.0) -> dict:
    world.clock.advance(advance)
    return _clock_answer(world)


def _truth(world: World, username=None, user=None, batches=True, numbers=False) -> dict:
    if username is not None and user is not None:
        raise _refuse("name the account once: username (or its older spelling user), not both")
    with world.lock:
        return world.truth(username or user or "demo", batches, numbers)


def _switch(world: World, **switches: bool) -> dict:
    with world.lock:
        for name, value in switches.items():
            setattr(world, name, value)
        return {"system_updating": world.system_updating, "webservice_disabled": world.webservice_disabled}


def _dark_answer(world: World) -> dict:
    left = world.dark_seconds_left()
    return {"dark_seconds_left": round(left, 3), "documents": bool(left and world.dark_documents)}


def _go_dark(world: World, seconds: float, documents: bool = False) -> dict:
    world.go_dark(seconds, documents)
    return _dark_answer(world)


def _end_dark(world: World) -> dict:
    world.end_dark()
    return _dark_answer(world)


def _forget(world: World, batch_id: int, times: int = 1) -> dict:
    world.forget(batch_id, times)
    return {"batch_id": batch_id, "times": times}


def _incidents_answer(world: World) -> dict:
    return {"incidents": [i.as_dict() for i in world.incidents], "running": sum(i.running for i in world.incidents)}


def _incident(world: World, operator: str, status: int, rate: float, line: str | None = None) -> dict:
    world.start_incident(operator, status, rate, line)
    return _incidents_answer(world)


def _replies(world: World, batch_id: int, share: float, text: str | None = None) -> dict:
    return {"batch_id": batch_id, "replies": world.stage_replies(batch_id, share, text)}


def _end_incidents(world: World) -> dict:
    world.end_incidents()
    return _incidents_answer(world)


ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("GET", "/_sim/truth"): Endpoint(
        {"username": Param(word), "user": Param(word), "batches": Param(flag), "numbers": Param(flag)}, _truth
    ),
    ("GET", "/_sim/clock"): Endpoint({}, _clock_answer),
    ("POST", "/_sim/clock"): Endpoint({"advance": Param(number)}, _advance),
    ("POST", "/_sim/switch"): Endpoint({"system_updating": Param(flag), "webservice_disabled": Param(flag)}, _switch),
    ("GET", "/_sim/dark"): Endpoint({}, _dark_answer),
    ("POST", "/_sim/dark"): Endpoint({"seconds": Param(number, required=True), "documents": Param(flag)}, _go_dark),
    ("DELETE", "/_sim/dark"): Endpoint({}, _end_dark),
    ("POST", "/_sim/forget"): Endpoint({"batch_id": Param(whole, required=True), "times": Param(whole)}, _forget),
    ("GET", "/_sim/incident"): Endpoint({}, _incidents_answer),
    ("POST", "/_sim/incident"): Endpoint(
        {
            "operator": Param(word, required=True),
            "status": Param(whole, required=True),
            "rate": Param(number, required=True),
            "line": Param(word),
        },
        _incident,
    ),
    ("DELETE", "/_sim/incident"): Endpoint({}, _end_incidents),
    ("POST", "/_sim/replies"): Endpoint(
        {"batch_id": Param(whole, required=True), "share": Param(number, required=True), "text": Param(word)},
        _replies,
    ),
}


def _arguments(method: str, path: str, endpoint: Endpoint, query: dict[str, list[str]]) -> dict:
    known = ", ".join(endpoint.params) or "no parameters"
    arguments = {}
    for name, values in query.items():
        param = endpoint.params.get(name)
        if param is None:
            raise _refuse(f"{method} {path} does not take {name[:40]!r}; it takes {known}")
        if len(values) != 1:
            raise _refuse(f"{name} is given {len(values)} times; give it once")
        arguments[name] = param.read(name, values[0])
    missing = [name for name, param in endpoint.params.items() if param.required and name not in arguments]
    if missing:
        raise _refuse(f"{method} {path} needs {', '.join(missing)}")
    return arguments


def answer(world: World, method: str, path: str, query: dict[str, list[str]]) -> tuple[str, list, bytes]:
    """(HTTP status, headers, body) of one admin request."""
    endpoint = ENDPOINTS.get((method, path))
    if endpoint is None:
        allowed = sorted(m for m, p in ENDPOINTS if p == path)
        if allowed:
            body = f"{path} answers {', '.join(allowed)}, not {method}".encode()
            return "405 Method Not Allowed", TEXT_PLAIN + [("Allow", ", ".join(allowed))], body
        paths = ", ".join(sorted({p for _, p in ENDPOINTS}))
        return "404 Not Found", TEXT_PLAIN, f"unknown admin endpoint {path[:80]!r}; there are {paths}".encode()
    try:
        result = endpoint.run(world, **_arguments(method, path, endpoint, query))
    except InputError as error:
        return "400 Bad Request", TEXT_PLAIN, " ".join(error.message_en.split()).encode()
    body = json.dumps(result, ensure_ascii=False).encode()
    return "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body
