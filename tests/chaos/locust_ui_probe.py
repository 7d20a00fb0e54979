"""Run in its own process (Locust monkey-patches with gevent): drive the Chaos tab.

``python tests/chaos/locust_ui_probe.py`` with ``PAYCHAOS_STATE_DIR`` set prints
one JSON object of what the UI answered.
"""

from __future__ import annotations

import json
import sys

from locust.env import Environment

from paychaos.locust.chaos_tab import SCRIPT_URL, TAB_KEY, install


def main() -> int:
    env = Environment(user_classes=[])
    env.create_local_runner()
    web_ui = env.create_web_ui("127.0.0.1", 0)
    runner = env.runner
    assert web_ui is not None and web_ui.app is not None and runner is not None
    out: dict[str, object] = {}
    try:
        panel = install(env)
        out["installed"] = panel is not None
        client = web_ui.app.test_client()
        index = client.get("/").get_data(as_text=True)
        out["script_on_index"] = SCRIPT_URL in index
        out["script_status"] = client.get(SCRIPT_URL).status_code
        out["old_page_leads_to_tab"] = client.get("/chaos").headers.get("Location")
        faults = json.loads(client.get("/chaos/api/faults").get_data(as_text=True))
        out["faults_listed"] = {"db-latency", "memory-pressure"} <= {f["name"] for f in faults}
        bad = client.post(
            "/chaos/api/inject", json={"fault": "db-latency", "for": "10", "latency_ms": "1"}
        )
        out["bad_status"] = bad.status_code
        out["bad_error"] = json.loads(bad.get_data(as_text=True)).get("error", "")
        ok = client.post(
            "/chaos/api/inject",
            data={"fault": "decline-spike", "for": "20s", "method": "crypto", "decline_rate": "1"},
        )
        out["inject_status"] = ok.status_code
        out["active"] = json.loads(client.get("/chaos/api/active").get_data(as_text=True))
        stats = json.loads(client.get("/stats/requests").get_data(as_text=True))
        out["tab_rows"] = [
            s["data"] for s in stats.get("extended_stats", []) if s["key"] == TAB_KEY
        ]
        out["tabs"] = web_ui.template_args.get("extended_tabs")
        out["revert_status"] = client.post("/chaos/api/revert", json={"id": "all"}).status_code
        out["active_after"] = json.loads(client.get("/chaos/api/active").get_data(as_text=True))
    finally:
        web_ui.stop()
        runner.quit()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
