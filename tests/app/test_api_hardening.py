"""/api/predict against hostile input: text that is not UTF-8, bodies over the size limit
(declared or chunked), and every refused or failed request counted by status in /metrics.

Real HTTP against the real app on a loopback port; the raw-socket requests send the headers
and only part of the body, so an answer proves the server refused without reading the rest.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import date

import httpx
import numpy as np
import pytest

from gradio_app.config import AppConfig, ConfigError, load_config
from gradio_app.model_holder import ModelHolder
from sentiment_assets.lib.versions import registry
from tests.app.conftest import RegistryHome
from tests.app.server_helpers import Running, metric, metric_samples, running_app

BODY_LIMIT = 16 * 1024
RESPONSES = "sentiment_http_responses_total"


@pytest.fixture(scope="module")
def app(registry_home: RegistryHome) -> Iterator[Running]:
    config = AppConfig(reload_seconds=60, max_text_chars=280, max_body_bytes=BODY_LIMIT)
    with running_app(registry_home.settings, config) as running:
        yield running


def post_raw(url: str, body: bytes) -> httpx.Response:
    return httpx.post(
        f"{url}/api/predict",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def exchange(url: str, head: str, body: bytes = b"") -> tuple[int, dict]:
    """Send the request line and headers plus `body` by hand, then read the answer.

    The body may be a fraction of what the headers promise: the server answering at all
    (instead of this timing out) shows that it did not wait for the rest.
    """
    address = httpx.URL(url)
    with socket.create_connection((address.host, address.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        headers = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = reader.read(int(headers["content-length"]))
    return status, json.loads(payload)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# --------------------------------------------------------------------- text that is not UTF-8


def test_a_lone_surrogate_is_refused_with_a_clear_422(app: Running) -> None:
    before = metric_samples(app.url)
    # Valid JSON: the escape of an unpaired UTF-16 surrogate, which no UTF-8 text can hold.
    response = post_raw(app.url, b'{"texts": ["fine", "broken \\ud800 text"]}')
    assert response.status_code == 422
    assert response.json() == {
        "error": "texts[1] holds an unpaired surrogate (U+D800) at character 7, "
        "which is not valid Unicode and cannot be encoded as UTF-8"
    }
    after = metric_samples(app.url)
    labels = {"endpoint": "api", "kind": "input"}
    assert metric(after, "sentiment_errors_total", **labels) == (
        metric(before, "sentiment_errors_total", **labels) + 1
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # FastAPI used to echo these inputs back in its validation error, and then failed
        # to encode its own answer: HTTP 500.
        (b'{"texts": "\\ud800"}', '"texts" must be a list of strings'),
        (b'{"\\udfff": ["hi"]}', 'send a JSON object with a "texts" list'),
        (b'{"texts": ["ok", 5]}', "texts[1] is not a string"),
        (b'{"texts": ["\xff"]}', "the body is not valid UTF-8 (byte 0xff at position 12)"),
        (b'{"texts": [', "the body is not valid JSON: Expecting value at line 1 column 12"),
        (b"", "the body is not valid JSON: Expecting value at line 1 column 1"),
        (b"[]", 'send a JSON object with a "texts" list'),
        # json.loads recurses per bracket: this used to end in a RecursionError.
        (b"[" * 10_000, "the body is not valid JSON: it is nested too deeply"),
    ],
)
def test_malformed_bodies_get_a_clear_422(app: Running, body: bytes, message: str) -> None:
    response = post_raw(app.url, body)
    assert (response.status_code, response.json()) == (422, {"error": message})


def test_valid_unicode_still_scores(app: Running) -> None:
    texts = ["best. day. ever!!! 😀", "naïve café, ñandú: 很好"]
    response = post_raw(app.url, json.dumps({"texts": texts}, ensure_ascii=False).encode())
    assert response.status_code == 200
    assert len(response.json()["scores"]) == 2


# ------------------------------------------------------------------------- body size limit


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(app: Running) -> None:
    # 50 MB announced, nothing sent: the answer can only come from the Content-Length.
    status, body = exchange(
        app.url,
        "POST /api/predict HTTP/1.1\nHost: test\nContent-Type: application/json\n"
        "Content-Length: 52428800\n",
    )
    assert status == 413
    assert body == {
        "error": f"the request body is 52428800 bytes; the limit is {BODY_LIMIT} bytes "
        "(SENTIMENT_APP_MAX_BODY_KB)"
    }
    # An ordinary client that sends it all gets the same answer.
    payload = json.dumps({"texts": ["x" * 200] * 200}).encode()
    assert len(payload) > BODY_LIMIT
    response = post_raw(app.url, payload)
    assert response.status_code == 413
    assert response.json()["error"].startswith(f"the request body is {len(payload)} bytes")


def test_a_chunked_body_is_refused_once_it_grows_past_the_limit(app: Running) -> None:
    # No Content-Length and no final chunk: the server must count while reading.
    status, body = exchange(
        app.url,
        "POST /api/predict HTTP/1.1\nHost: test\nContent-Type: application/json\n"
        "Transfer-Encoding: chunked\n",
        b"".join(chunk(b" " * 4096) for _ in range(BODY_LIMIT // 4096 + 1)),
    )
    assert status == 413
    assert body == {
        "error": f"the request body is over the limit of {BODY_LIMIT} bytes "
        "(SENTIMENT_APP_MAX_BODY_KB)"
    }

    def pieces(total: int) -> Iterator[bytes]:
        yield b'{"texts": ["'
        for _ in range(total // 1024):
            yield b"y" * 1024
        yield b'"]}'

    # httpx sends a generator chunked, without Content-Length.
    too_big = httpx.post(f"{app.url}/api/predict", content=pieces(4 * BODY_LIMIT), timeout=10)
    assert too_big.status_code == 413
    small = httpx.post(
        f"{app.url}/api/predict",
        content=iter([b'{"texts": ', b'["a lovely day, so happy"]}']),
        timeout=10,
    )
    assert small.status_code == 200, small.text
    assert len(small.json()["scores"]) == 1


def test_gradio_uploads_keep_their_own_limit(app: Running) -> None:
    # The API's body limit is for /api/predict; an upload bigger than it but under
    # max_upload_bytes (5 MB by default) still goes through Gradio.
    data = b"text\n" + b"a fine tweet\n" * (4 * BODY_LIMIT // 13)
    response = httpx.post(
        f"{app.url}/gradio_api/upload",
        files={"files": ("tweets.csv", data, "text/csv")},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_config_reads_the_body_limit() -> None:
    assert load_config({}).max_body_bytes == AppConfig().max_body_bytes == 1024 * 1024
    assert load_config({"SENTIMENT_APP_MAX_BODY_KB": "64"}).max_body_bytes == 64 * 1024
    assert load_config({"SENTIMENT_APP_MAX_BODY_KB": "0.5"}).max_body_bytes == 512
    with pytest.raises(ConfigError, match="SENTIMENT_APP_MAX_BODY_KB must be positive"):
        load_config({"SENTIMENT_APP_MAX_BODY_KB": "0"})


# --------------------------------------------------------------- responses counted by status


def test_error_responses_are_counted_by_route_and_status(app: Running) -> None:
    before = metric_samples(app.url)
    stray = f"/no/such/page/{uuid.uuid4().hex}"
    assert httpx.get(f"{app.url}{stray}", timeout=10).status_code == 404
    assert post_raw(app.url, b'{"texts": []}').status_code == 422
    assert post_raw(app.url, b'{"texts": "\\ud800"}').status_code == 422
    assert post_raw(app.url, b"x" * (BODY_LIMIT + 1)).status_code == 413
    assert post_raw(app.url, b'{"texts": ["good"]}').status_code == 200
    after = metric_samples(app.url)

    def grew(path: str, status: str) -> float:
        return metric(after, RESPONSES, path=path, status=status) - metric(
            before, RESPONSES, path=path, status=status
        )

    assert grew("other", "404") == 1
    assert grew("/api/predict", "422") == 2
    assert grew("/api/predict", "413") == 1
    assert grew("/api/predict", "200") == 1
    # Bounded labels: route templates, never the raw URL a client made up.
    paths = {dict(labels).get("path") for name, labels in after if name == RESPONSES}
    assert stray not in paths
    assert all(p == "other" or p.startswith("/") for p in paths)


class OneScore:
    """A model that breaks the scorer contract: one score, however many texts it is given.

    It passes the holder's single-text warm-up, so the failure only shows on a real request,
    which is exactly the unexpected error that has to surface as a counted 500.
    """

    def predict_proba(self, raw_texts: list[str]) -> np.ndarray:
        return np.array([0.9])


class Alias:
    def __init__(self) -> None:
        self.version: str | None = None

    def __call__(self) -> registry.VersionInfo | None:
        if self.version is None:
            return None
        return registry.VersionInfo(
            self.version, "tfidf_logreg", date(2024, 1, 1), None, "file:///"
        )


def test_503_and_500_are_counted(registry_home: RegistryHome) -> None:
    alias = Alias()
    holder = ModelHolder(alias, lambda info: OneScore(), reload_seconds=60)
    with running_app(
        registry_home.settings, AppConfig(reload_seconds=60), holder=holder
    ) as running:
        payload = {"texts": ["one", "two"]}
        no_model = httpx.post(f"{running.url}/api/predict", json=payload, timeout=10)
        assert no_model.status_code == 503
        assert httpx.get(f"{running.url}/healthz", timeout=10).status_code == 503
        alias.version = "7"
        assert holder.refresh()
        broken = httpx.post(f"{running.url}/api/predict", json=payload, timeout=10)
        assert broken.status_code == 500
        samples = metric_samples(running.url)
    assert metric(samples, RESPONSES, path="/api/predict", status="503") == 1
    assert metric(samples, RESPONSES, path="/healthz", status="503") == 1
    assert metric(samples, RESPONSES, path="/api/predict", status="500") == 1


def test_auth_answers_before_the_body_limit_and_both_are_counted(
    registry_home: RegistryHome,
) -> None:
    config = AppConfig(reload_seconds=60, max_body_bytes=BODY_LIMIT, user="ana", password="pw")
    oversized = b"x" * (BODY_LIMIT + 1)
    with running_app(registry_home.settings, config) as running:
        # Without credentials the size says nothing: 401 first, the limit only once let in.
        anonymous = httpx.post(f"{running.url}/api/predict", content=oversized, timeout=10)
        assert anonymous.status_code == 401
        authed = httpx.post(
            f"{running.url}/api/predict", content=oversized, auth=("ana", "pw"), timeout=10
        )
        assert authed.status_code == 413
        samples = metric_samples(running.url, auth=("ana", "pw"))
    assert metric(samples, RESPONSES, path="/api/predict", status="401") == 1
    assert metric(samples, RESPONSES, path="/api/predict", status="413") == 1
