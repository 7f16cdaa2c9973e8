"""The ASGI app: Gradio mounted on FastAPI next to /metrics, /healthz and a plain JSON
/api/predict, served by uvicorn."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from gradio_app.config import AppConfig
from gradio_app.feedback import FeedbackStore
from gradio_app.model_holder import (
    ModelHolder,
    ModelLoadingError,
    NoModelError,
    registry_holder,
)
from gradio_app.telemetry import CONTENT_TYPE, Telemetry
from gradio_app.ui import AppContext, build_blocks
from sentiment_assets.environment import current_settings
from sentiment_assets.lib.core.months import iso_or_empty
from sentiment_assets.lib.settings import Settings

# Liveness probes must work without credentials; nothing they return is sensitive.
OPEN_PATHS = frozenset({"/healthz"})
API_MAX_TEXTS = 1000
# Bodies read whole by our own handlers, so held to AppConfig.max_body_bytes. Gradio's routes
# are left alone: uploads have their own limit (max_file_size) and stream to disk.
LIMITED_PATHS = frozenset({"/api/predict"})
# Our own exact routes: the metric label for a request answered before routing (401, 413).
OWN_PATHS = frozenset({"/api/predict", "/metrics", "/healthz"})
UNROUTED = "other"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


class BasicAuthMiddleware:
    """HTTP basic auth in front of everything (UI, API, /metrics) except OPEN_PATHS.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which buffers responses and would
    get in the way of Gradio's server-sent events.
    """

    def __init__(self, app: ASGIApp, user: str, password: str) -> None:
        self.app = app
        self._expected = (user.encode(), password.encode())

    def _authorised(self, scope: Scope) -> bool:
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared, always: the time taken says nothing about which one was wrong.
        user_ok = secrets.compare_digest(user, self._expected[0])
        password_ok = secrets.compare_digest(password, self._expected[1])
        return user_ok and password_ok

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if self._authorised(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = PlainTextResponse(
            "authentication required",
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="tweet-sentiment", charset="UTF-8"'},
        )
        await response(scope, receive, send)


class BodyLimitMiddleware:
    """HTTP 413 for a body over `max_bytes` on LIMITED_PATHS, before the app parses any of it.

    A declared Content-Length is refused without reading a byte. A chunked body (no
    Content-Length) is read here, counting, and refused as soon as it grows past the limit;
    a body within it is handed on whole. Plain ASGI for the same reason as BasicAuthMiddleware.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, paths: frozenset[str] = LIMITED_PATHS) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths

    async def _refuse(self, scope: Scope, receive: Callable, send: Callable, why: str) -> None:
        # The connection stays open: uvicorn discards the rest of the body. Closing it while
        # the client still sends could reset the connection before the client reads the 413.
        message = f"{why} (SENTIMENT_APP_MAX_BODY_KB)"
        await JSONResponse({"error": message}, status_code=413)(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            why = f"the request body is {int(declared)} bytes; the limit is {self.max_bytes} bytes"
            await self._refuse(scope, receive, send, why)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client is gone: nobody to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                why = f"the request body is over the limit of {self.max_bytes} bytes"
                await self._refuse(scope, receive, send, why)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: http.disconnect, as usual
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def route_label(scope: Scope) -> str:
    """The template of the route that answered ("/gradio_api/file={path_or_url}"): as many
    label values as the app has routes, whatever URLs clients make up."""
    template = getattr(scope.get("route"), "path_format", None)
    if template:
        return template
    # No route: refused before routing (401, 413) or matched by none (404).
    path = scope.get("path", "")
    return path if path in OWN_PATHS else UNROUTED


class ResponseMetricsMiddleware:
    """Counts every HTTP response by route and status (sentiment_http_responses_total).

    Wraps `send` to read the status as the response starts, so it sees the answers of
    FastAPI, of Gradio and of the middlewares inside it alike. An exception that escapes
    before any response started becomes, one layer out, Starlette's plain 500: counted here.
    """

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def counting_send(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True
                self.telemetry.observe_response(route_label(scope), message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not started:
                self.telemetry.observe_response(route_label(scope), 500)
            raise


class InputError(ValueError):
    """A request the client must fix; the message says what, and goes back with HTTP 422."""


def read_texts(body: bytes, max_chars: int) -> list[str]:
    """The texts of an /api/predict body, or InputError naming the first problem.

    Parsed here rather than by a pydantic body model: FastAPI's validation errors echo the
    input, and an echoed lone surrogate made its own answer fail to encode (HTTP 500).
    """
    try:
        document = body.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = body[error.start]
        raise InputError(
            f"the body is not valid UTF-8 (byte 0x{byte:02x} at position {error.start})"
        ) from None
    try:
        data = json.loads(document)
    except json.JSONDecodeError as error:
        raise InputError(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:  # json recurses once per bracket: "[[[[..." exhausts the stack
        raise InputError("the body is not valid JSON: it is nested too deeply") from None
    if not isinstance(data, dict) or "texts" not in data:
        raise InputError('send a JSON object with a "texts" list')
    texts = data["texts"]
    if not isinstance(texts, list):
        raise InputError('"texts" must be a list of strings')
    if not texts:
        raise InputError("send at least one text")
    if len(texts) > API_MAX_TEXTS:
        raise InputError(f"{len(texts)} texts; at most {API_MAX_TEXTS} per request")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"texts[{i}] is not a string")
        if not text.strip():
            raise InputError(f"texts[{i}] is empty")
        try:
            # JSON may escape half of a UTF-16 pair ("\ud800"); Python decodes it into a str
            # that no model, log or response can encode.
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InputError(
                f"texts[{i}] holds an unpaired surrogate (U+{ord(text[error.start]):04X}) at "
                f"character {error.start}, which is not valid Unicode and cannot be encoded "
                "as UTF-8"
            ) from None
        if len(text) > max_chars:
            raise InputError(f"texts[{i}] is {len(text)} characters long; the limit is {max_chars}")
    return texts


@dataclass
class SentimentApp:
    asgi: Any
    context: AppContext
    blocks: gr.Blocks

    @property
    def holder(self) -> ModelHolder:
        return self.context.holder

    @property
    def telemetry(self) -> Telemetry:
        return self.context.telemetry

    def close(self) -> None:
        self.context.holder.stop()
        shutil.rmtree(self.context.workdir, ignore_errors=True)


def create_app(
    settings: Settings | None = None,
    config: AppConfig | None = None,
    holder: ModelHolder | None = None,
    wait_for_model: bool = False,
) -> SentimentApp:
    """Build the app; the champion loads in the background.

    A model can take tens of seconds to load on a busy machine; meanwhile the pages answer,
    say "loading model vN…", and /healthz and /api/predict answer 503 with status "loading".
    `wait_for_model=True` loads it before returning instead (benchmarks, tests that start
    with a request). An app without a champion still starts: it says so on every page and
    in /healthz, and picks the champion up as soon as the pipeline registers one.
    """
    settings = settings or current_settings()
    config = config or AppConfig()
    telemetry = Telemetry()
    if holder is not None and config.threads is not None:
        import torch  # a registry holder sets this itself, off the start-up path

        torch.set_num_threads(config.threads)
    if holder is None:
        holder = registry_holder(
            settings,
            reload_seconds=config.reload_seconds,
            retry_failed_seconds=config.retry_failed_seconds,
            on_swap=telemetry.model_swapped,
            on_failure=telemetry.load_failed,
            encoder_runtime=config.encoder_runtime,
            threads=config.threads,
            batch_workers=config.serving_batch_workers(),
        )
    holder.start(wait=wait_for_model)
    workdir = Path(tempfile.mkdtemp(prefix="sentiment-app-"))
    context = AppContext(
        settings=settings,
        config=config,
        holder=holder,
        telemetry=telemetry,
        feedback=FeedbackStore(settings.feedback_dir),
        workdir=workdir,
    )
    blocks = build_blocks(context)

    api = FastAPI(title="tweet-sentiment", docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/metrics")
    def metrics() -> Response:
        return Response(telemetry.render(), media_type=CONTENT_TYPE)

    @api.post("/api/predict")
    async def predict_api(request: Request) -> JSONResponse:
        """Plain JSON for machine clients: no queue, no session, no UI state."""
        try:
            texts = read_texts(await request.body(), config.max_text_chars)
        except InputError as error:
            telemetry.observe_error("api", "input")
            return JSONResponse({"error": str(error)}, status_code=422)
        try:
            # Off the event loop, as FastAPI runs a plain `def` endpoint: scoring is CPU work.
            prediction = await run_in_threadpool(holder.predict, texts)
        except NoModelError as error:
            telemetry.observe_error("api", "no_model")
            # While a model loads, tell clients when to come back instead of giving up.
            headers = {"Retry-After": "5"} if isinstance(error, ModelLoadingError) else None
            return JSONResponse({"error": str(error)}, status_code=503, headers=headers)
        telemetry.observe_prediction(
            "api",
            prediction.version,
            prediction.family,
            prediction.labels,
            prediction.latency_ms / 1000,
        )
        return JSONResponse(
            {
                "labels": prediction.labels,
                "scores": prediction.scores,
                "model_version": prediction.version,
                "family": prediction.family,
                "trained_through": iso_or_empty(prediction.trained_through),
                "latency_ms": round(prediction.latency_ms, 3),
            }
        )

    @api.get("/healthz")
    def healthz() -> JSONResponse:
        status = holder.status()
        served = status.served
        body = {
            "status": "ok" if served else "loading" if status.pending else "no_model",
            "model_version": served.version if served else None,
            # The version being loaded (the first one, or the next champion), else null.
            "loading_version": status.loading.version if status.loading else None,
            "family": served.family if served else None,
            "trained_through": iso_or_empty(served.trained_through) if served else None,
            "runtime": status.runtime,
            "champion_version": status.champion.version if status.champion else None,
            "last_error": status.failure.message if status.failure else None,
        }
        return JSONResponse(body, status_code=200 if served else 503)

    asgi = gr.mount_gradio_app(
        api,
        blocks,
        path="",
        max_file_size=config.max_upload_bytes,
        allowed_paths=[str(workdir)],
        show_error=True,
        ssr_mode=False,
        footer_links=["api"],
    )
    # add_middleware wraps what is there, so the last one added sees each request first.
    asgi.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    if config.auth_enabled:
        asgi.add_middleware(BasicAuthMiddleware, user=config.user, password=config.password)
    # Outermost: counts the 401s and 413s the middlewares above answer with, too.
    asgi.add_middleware(ResponseMetricsMiddleware, telemetry=telemetry)
    return SentimentApp(asgi=asgi, context=context, blocks=blocks)


class BackgroundServer:
    """uvicorn in a daemon thread on an already-bound socket (port 0 = any free port).

    Binding first and handing uvicorn the socket leaves no gap in which another process
    could take the port between "find a free port" and "listen on it".
    """

    def __init__(self, asgi: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        self._server = uvicorn.Server(
            uvicorn.Config(
                asgi,
                log_level="warning",
                access_log=False,
                lifespan="on",
                # Open event streams (a browser tab, a gradio_client) would hold a graceful
                # shutdown forever; after this many seconds they are cut.
                timeout_graceful_shutdown=2,
            )
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            deadline.wait(0.05)
        raise RuntimeError(f"the app did not start on {self.url} within {timeout} s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=5)
        self._socket.close()


def serve(settings: Settings | None = None, config: AppConfig | None = None) -> None:
    config = config or AppConfig()
    app = create_app(settings, config)
    try:
        uvicorn.run(
            app.asgi,
            host=config.host,
            port=config.port,
            log_level="info",
            timeout_graceful_shutdown=5,
        )
    finally:
        app.close()
