"""The seed's React checkout page (``stack/webapp``) and the server that serves it.

The page (``src/``, bundled by esbuild into ``dist/`` by ``npm ci && npm run build``,
what ``make webapp`` does) runs the Grafana Faro web SDK: it pushes
``click_payment_button`` (``method``, ``cart_value``), errors with their context
(``method``, ``screen``), web vitals and the browser's traces to the collector's
``/collect``, and its checkout ``fetch`` carries the W3C ``traceparent`` to the
payment API. Where the API and the collector are is decided at serve time:
:mod:`paychaos.stack.webapp.server` serves ``dist/`` and writes ``config.js``
beside it (``window.PAYCHAOS_CONFIG``).
"""

from __future__ import annotations

from pathlib import Path

WEBAPP_DIR = Path(__file__).resolve().parent
DIST_DIR = WEBAPP_DIR / "dist"
BUILD_HINT = "build it with: make webapp (npm ci && npm run build in stack/webapp)"

# The page is ready for a click once its button and Faro are there and it has painted: a
# person cannot click what is not on the screen yet, and web-vitals ends LCP at the first
# click, reporting nothing when no paint came before it (LCP then never arrives; a test
# that clicked at once lost it about one run in seven).
PAGE_READY_JS = (
    "!!document.getElementById('pay') && !!window.faro"
    " && performance.getEntriesByName('first-contentful-paint').length > 0"
)


def built(dist: Path = DIST_DIR) -> bool:
    """Whether the page's bundle is there to serve."""
    return (dist / "index.html").is_file() and (dist / "app.js").is_file()


def require_built() -> Path:
    """The built page's directory; :class:`StackError` naming the build when it is not."""
    from paychaos.contracts.errors import StackError

    if not built(DIST_DIR):
        raise StackError(f"the checkout page is not built ({DIST_DIR}); {BUILD_HINT}")
    return DIST_DIR


__all__ = ["BUILD_HINT", "DIST_DIR", "PAGE_READY_JS", "WEBAPP_DIR", "built", "require_built"]
