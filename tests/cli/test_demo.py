"""The demo workload is code users copy: its spans use the real API the right way."""

from __future__ import annotations

import contextlib
import random
from concurrent.futures import ThreadPoolExecutor

from span_tree._commands.demo import OrderService
from span_tree.testing import capture_spans


def test_demo_server_spans_have_a_real_kind() -> None:
    """The demo's request handlers are `server` spans, not spans with a `kind` attribute."""
    with ThreadPoolExecutor(max_workers=2) as pool, capture_spans() as spans:
        service = OrderService(random.Random(3), pool, slow_release=False)
        for handler in (service.create_order, service.get_order, service.recommendations):
            with contextlib.suppress(Exception):  # the demo fails some requests on purpose
                handler(1001)
    handlers = [span for span in spans if span.name.split(" ")[0] in ("GET", "POST")]
    assert 3 == len({span.name for span in handlers})
    assert {"server"} == {span.kind for span in handlers}
    assert [] == [span.name for span in handlers if "kind" in span.attributes]
