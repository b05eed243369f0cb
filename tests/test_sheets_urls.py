"""validate --check-urls never probes your own network for a stranger's sheet."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from batchwan.checks import urlcheck
from tests.runhelpers import invoke


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 360), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


class Server:
    """A file server on one loopback address that counts hits and can redirect."""

    def __init__(self, host: str, redirect_to: str | None = None) -> None:
        self.hits: list[str] = []
        body = _png()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                if self.path == "/redirect" and redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def inside() -> Iterator[Server]:
    """The "private" server, on 127.0.0.1."""
    server = Server("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def outside(inside: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server on 127.0.0.2 that the check takes as public; /redirect leads inside."""
    real = urlcheck._is_public
    monkeypatch.setattr(urlcheck, "_is_public", lambda a: a == "127.0.0.2" or real(a))
    server = Server("127.0.0.2", redirect_to=f"{inside.url}/a.png")
    yield server
    server.close()


def sheet(folder: Path, url: str) -> Path:
    """A one-row CSV naming ``url``."""
    path = folder / "s.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["prompt", "image"], ["a", url]])
    return path


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_urls_are_refused_unfetched(tmp_path: Path, inside: Server, host: str) -> None:
    """A URL naming or resolving to loopback is refused, and the server sees nothing."""
    url = f"{inside.url.replace('127.0.0.1', host)}/a.png"
    result = invoke(["validate", str(sheet(tmp_path, url)), "--check-urls"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith(f"row 1: image: {url} leads to ")
    assert "a loopback, private or link-local address; it is not fetched" in result.output
    assert inside.hits == []


def test_a_redirect_into_loopback_is_refused(
    tmp_path: Path, inside: Server, outside: Server
) -> None:
    """A public URL that redirects to a private address: refused at the redirect."""
    url = f"{outside.url}/redirect"
    result = invoke(["validate", str(sheet(tmp_path, url)), "--check-urls"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"row 1: image: {url} redirects to {inside.url}/a.png, which leads to 127.0.0.1, a "
        "loopback, private or link-local address; it is not fetched (pass "
        "--allow-private-urls if the sheet is yours and you mean it)"
    )
    assert outside.hits == ["/redirect"]
    assert inside.hits == []


def test_allow_private_urls_fetches_them(tmp_path: Path, inside: Server, outside: Server) -> None:
    """With --allow-private-urls the redirect is followed and the image checked: valid."""
    url = f"{outside.url}/redirect"
    result = invoke(["validate", str(sheet(tmp_path, url)), "--check-urls", "--allow-private-urls"])
    assert result.exit_code == 0, result.output
    assert inside.hits == ["/a.png"]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("10.1.2.3", False),
        ("192.168.0.10", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
    ],
)
def test_which_addresses_are_public(address: str, public: bool) -> None:
    """Private, loopback, link-local (cloud metadata) and mapped addresses are not public."""
    assert urlcheck._is_public(address) is public
