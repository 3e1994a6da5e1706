"""`aiperf-hpc serve`: the aiohttp application, its routes and authentication, and the serve loop.

```
  GET    /health                                  open
  GET    /openapi.json, /docs, /docs/assets/*     open (the docs page loads nothing from outside)
  POST   /api/v1/client-groups                    \
  GET    /api/v1/client-groups                     |  with a token: `Authorization: Bearer TOKEN`
  GET    /api/v1/client-groups/{id}                |  (compared in constant time), else 401
  DELETE /api/v1/client-groups/{id}                |
  GET    /api/v1/client-groups/{id}/metrics        |
  GET    /api/v1/client-groups/{id}/results       /
```

Errors are JSON `{"detail": [{"loc": [...], "msg": "..."}]}`. The service refuses to listen beyond
loopback without a token, and holds a lock on its state dir so two services never share one.
SIGINT or SIGTERM stops it: no new requests, local runs SIGTERMed (they write partial results),
then exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hmac
import ipaddress
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ValidationError

from aiperf_hpc import __version__
from aiperf_hpc.api_key import API_KEY_ENV
from aiperf_hpc.artifacts import PROFILE_EXPORT_FILE, REST_LOCK_FILE
from aiperf_hpc.errors import AiperfError, RunError, UsageError
from aiperf_hpc.rest.groups import ClientGroups, Conflict, NotFound
from aiperf_hpc.rest.models import ClientGroupCreate, ClientGroupList, ErrorBody, ErrorItem, Health
from aiperf_hpc.rest.openapi import (
    API_PREFIX,
    DOCS_ASSETS,
    DOCS_CONTENT_SECURITY_POLICY,
    DOCS_INIT_SCRIPT,
    docs_page,
    openapi_document,
    swagger_ui_dir,
)
from aiperf_hpc.rest.store import Store
from aiperf_hpc.rest.validation import BodyError

log = logging.getLogger(__name__)

TOKEN_ENV = "AIPERF_HPC_SERVICE_TOKEN"
_GROUPS_KEY = web.AppKey("groups", ClientGroups)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def serve(*, host: str, port: int, token: str | None, state_dir: Path) -> int:
    """Run the service until SIGINT or SIGTERM; 0 after a clean stop. Raises UsageError (a wide bind
    without a token, a state dir in use or unusable) or RunError (cannot listen)."""
    if token is not None and not token.strip():
        raise UsageError(f"--token (or {TOKEN_ENV}) must not be empty")
    if token is None and not _is_loopback(host):
        raise UsageError(f"refusing to listen on {host} without a token: set --token or {TOKEN_ENV}")
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {port}")
    os.environ.pop(API_KEY_ENV, None)  # a run gets the key its body gives, never the service's own
    os.environ.pop(TOKEN_ENV, None)  # the runs (and Slurm jobs) inherit the environment; the token stays here
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="aiperf-hpc serve %(levelname)s: %(message)s")
    with _state_dir_lock(state_dir):
        asyncio.run(_serve(host, port, token, state_dir))
    return 0


async def _serve(host: str, port: int, token: str | None, state_dir: Path) -> None:
    store = Store(state_dir)
    try:
        async with aiohttp.ClientSession() as http:
            groups = ClientGroups(state_dir, store, http)
            groups.recover()
            runner = web.AppRunner(build_app(groups, token=token), handle_signals=False)
            await runner.setup()
            try:
                site = web.TCPSite(runner, host, port)
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                raise RunError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
            await _run_until_signalled(groups, runner)
    finally:
        store.close()


async def _run_until_signalled(groups: ClientGroups, runner: web.AppRunner) -> None:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stopping.set)
    for address in runner.addresses:
        print(f"aiperf-hpc service listening on http://{_url_host(address[0])}:{address[1]}", flush=True)
    watch = asyncio.create_task(_watch(groups), name="watch")
    try:
        await stopping.wait()  # the service's life: it ends on a signal, by design unbounded
        log.info("stopping: no new requests; ending the local runs")
    finally:
        await runner.cleanup()
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        for line in await groups.stop():
            log.warning("%s", line)


async def _watch(groups: ClientGroups) -> None:
    """`groups.watch_loop`, restarted after a failure it logs (a full disk must not stop all watching)."""
    while True:
        try:
            await groups.watch_loop()
        except (AiperfError, OSError, sqlite3.Error) as exc:
            log.error("watching the client groups failed: %s", exc)
            await asyncio.sleep(1.0)


def build_app(groups: ClientGroups, *, token: str | None) -> web.Application:
    """The aiohttp application; `token` None means no authentication."""
    app = web.Application(middlewares=[_errors_as_json, _bearer_auth(token)])
    app[_GROUPS_KEY] = groups
    document = openapi_document(__version__)
    group, one = f"{API_PREFIX}/client-groups", f"{API_PREFIX}/client-groups/{{id}}"
    app.add_routes(
        [
            web.get("/health", _health),
            web.get("/openapi.json", _openapi(document)),
            web.get("/docs", _docs),
            web.get(f"{DOCS_ASSETS}/init.js", _docs_init),
            web.static(DOCS_ASSETS, swagger_ui_dir()),
            web.post(group, _create),
            web.get(group, _list),
            web.get(one, _get),
            web.delete(one, _cancel),
            web.get(f"{one}/metrics", _metrics),
            web.get(f"{one}/results", _results),
        ]
    )
    return app


# -- handlers ------------------------------------------------------------------------------------


async def _health(request: web.Request) -> web.Response:
    groups = request.app[_GROUPS_KEY]
    return _model_response(Health(status="ok", version=__version__, active_client_groups=groups.active_count()))


def _openapi(document: dict[str, Any]) -> _Handler:
    body = orjson.dumps(document)

    async def openapi_json(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return openapi_json


async def _docs(_: web.Request) -> web.Response:
    return web.Response(
        text=docs_page(), content_type="text/html", headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY}
    )


async def _docs_init(_: web.Request) -> web.Response:
    return web.Response(text=DOCS_INIT_SCRIPT, content_type="application/javascript")


async def _create(request: web.Request) -> web.Response:
    groups = request.app[_GROUPS_KEY]
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _error(422, ["body"], f"the body is not JSON: {exc}")
    try:
        body = ClientGroupCreate.model_validate(data)
    except ValidationError as exc:
        items = [ErrorItem(loc=["body", *error["loc"]], msg=error["msg"]) for error in exc.errors()]
        return _model_response(ErrorBody(detail=items), status=422)
    try:
        row = await groups.create(body)
    except BodyError as exc:
        return _error(422, exc.loc, exc.msg)
    response = _model_response(await groups.view(row, live=False), status=201)
    response.headers["Location"] = f"{API_PREFIX}/client-groups/{row.id}"
    return response


async def _list(request: web.Request) -> web.Response:
    groups = request.app[_GROUPS_KEY]
    views = [await groups.view(row, live=False) for row in groups.all()]
    return _model_response(ClientGroupList(client_groups=views))


async def _get(request: web.Request) -> web.Response:
    groups = request.app[_GROUPS_KEY]
    return _model_response(await groups.view(groups.get(request.match_info["id"]), live=True))


async def _cancel(request: web.Request) -> web.Response:
    groups = request.app[_GROUPS_KEY]
    row = await groups.cancel(request.match_info["id"])
    return _model_response(await groups.view(row, live=False), status=202)


async def _metrics(request: web.Request) -> web.Response:
    text = await request.app[_GROUPS_KEY].live_metrics_text(request.match_info["id"])
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _results(request: web.Request) -> web.Response:
    row = request.app[_GROUPS_KEY].get(request.match_info["id"])
    path = Path(row.artifact_dir) / PROFILE_EXPORT_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _error(404, ["path", "id"], f"client group {row.id} ({row.status}) has no {PROFILE_EXPORT_FILE} yet")
    return web.Response(body=data, content_type="application/json")


# -- middlewares and responses -------------------------------------------------------------------


@web.middleware
async def _errors_as_json(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Domain errors and aiohttp's own (unknown route, wrong method) as the API's JSON error body."""
    try:
        return await handler(request)
    except NotFound as exc:
        return _error(404, ["path", "id"], str(exc))
    except Conflict as exc:
        return _error(409, ["path", "id"], str(exc))
    except RunError as exc:
        return _error(502, [], str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, ["path"], exc.reason)


def _bearer_auth(token: str | None) -> Middleware:
    expected = None if token is None else f"Bearer {token}".encode()

    @web.middleware
    async def bearer_auth(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if expected is not None and request.path.startswith(f"{API_PREFIX}/"):
            given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, expected):
                response = _error(401, ["header", "Authorization"], "missing or wrong bearer token")
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
        return await handler(request)

    return bearer_auth


def _error(status: int, loc: list[str | int], msg: str) -> web.Response:
    return _model_response(ErrorBody(detail=[ErrorItem(loc=loc, msg=msg)]), status=status)


def _model_response(model: BaseModel, *, status: int = 200) -> web.Response:
    return web.Response(body=model.model_dump_json(), status=status, content_type="application/json")


# -- start-up checks -----------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def _state_dir_lock(state_dir: Path) -> Iterator[None]:
    """Hold `state_dir/service.lock` (flock) while the service runs; UsageError when another holds it."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock_file = (state_dir / REST_LOCK_FILE).open("a")
    except OSError as exc:
        raise UsageError(f"cannot use --state-dir {state_dir}: {exc.strerror or exc}") from None
    with lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(f"another aiperf-hpc service uses --state-dir {state_dir}") from None
        yield
