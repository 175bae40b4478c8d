"""A tiny "merchant shop" served from its own loopback port, so that Flint's redirects (success_url,
cancel_url) and, later, the embedded widget land on a real page of a different origin.

Plain ``http.server`` in a daemon thread: no framework, nothing shared with Flint. It records every
request it answers (``Shop.requests``) so a test can assert that a redirect arrived, with its query.
"""
from __future__ import annotations

import html
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

SHOP_NAME = "Acme Coffee"

_STYLE = """
  :root { color-scheme: light; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  body { margin: 0; background: #f6f3ef; color: #1f1a17; line-height: 1.5; }
  header, main, footer { max-width: 44rem; margin: 0 auto; padding: 1rem 1.25rem; }
  header { display: flex; justify-content: space-between; align-items: center; }
  header a { color: #1f1a17; font-weight: 700; text-decoration: none; }
  nav a { color: #5a3d2b; margin-left: 1rem; }
  h1 { font-size: 1.75rem; margin: 0.5rem 0 1rem; }
  .product { background: #fff; border: 1px solid #d9d0c7; border-radius: 0.75rem; padding: 1rem 1.25rem; }
  .price { font-weight: 700; }
  .note { color: #4a403a; }
  footer { color: #4a403a; font-size: 0.875rem; }
"""


def page_html(title: str, body: str) -> str:
    """An accessible page shell: lang, a title, header/main/footer landmarks; ``body`` goes in main."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · {SHOP_NAME}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
  <a href="/">{SHOP_NAME}</a>
  <nav aria-label="Shop"><a href="/">Shop</a><a href="/cart">Cart</a></nav>
</header>
<main>
{body}
</main>
<footer><p>{SHOP_NAME} is a test merchant used by Flint's browser tests.</p></footer>
</body>
</html>
"""


def _home() -> str:
    return page_html("Shop", """<h1>Fresh coffee, roasted to order</h1>
<section class="product" aria-labelledby="beans">
  <h2 id="beans">Espresso beans, 1 kg</h2>
  <p class="note">Dark chocolate, hazelnut and a long caramel finish.</p>
  <p class="price">$24.00</p>
</section>""")


def _thanks(query: dict[str, str]) -> str:
    details = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in query.items())
    return page_html("Thank you", f"""<h1>Thank you for your order</h1>
<p>Your payment went through. We are roasting your beans now.</p>
{f'<dl>{details}</dl>' if details else ''}""")


def _cart() -> str:
    return page_html("Cart", """<h1>Your cart</h1>
<p>Checkout was canceled. Your cart is still here when you are ready.</p>""")


@dataclass
class ShopRequest:
    path: str
    query: dict[str, str]


@dataclass
class Shop:
    """``url`` is the shop's origin (``http://localhost:PORT``), a different site from Flint's 127.0.0.1."""

    url: str
    pages: dict[str, str] = field(default_factory=dict)
    requests: list[ShopRequest] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return self.url

    def serve(self, path: str, document: str) -> str:
        """Serve ``document`` (HTML) at ``path`` from now on; returns its absolute URL."""
        self.pages[path] = document
        return self.url + path

    def visits(self, path: str) -> list[ShopRequest]:
        return [r for r in self.requests if r.path == path]


def _handler(shop: Shop) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "AcmeShop/1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            shop.requests.append(ShopRequest(parts.path, query))
            if parts.path in shop.pages:
                body, status = shop.pages[parts.path], 200
            elif parts.path == "/":
                body, status = _home(), 200
            elif parts.path == "/thanks":
                body, status = _thanks(query), 200
            elif parts.path == "/cart":
                body, status = _cart(), 200
            else:
                body, status = page_html("Not found", "<h1>Page not found</h1>"), 404
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args) -> None:  # quiet: requests are kept in shop.requests
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET


def start_shop(host: str = "127.0.0.1", public_host: str = "localhost") -> tuple[Shop, ThreadingHTTPServer, threading.Thread]:
    """Binds a free loopback port; the shop is addressed as ``public_host`` (``localhost``), so it is
    another origin and another site than Flint on ``127.0.0.1``."""
    shop = Shop(url="")
    httpd = _Server((host, 0), _handler(shop))
    shop.url = f"http://{public_host}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                              name="e2e-shop", daemon=True)
    thread.start()
    return shop, httpd, thread


def stop_shop(httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
