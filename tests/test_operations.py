"""What operators get: metrics that follow Prometheus' conventions and exist from the first
scrape, a dashboard and alert rules that name only exported metrics, the operator's
endpoints on a port of their own, and JSON log records with fields."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from bot.errors import SettingsError
from bot.settings import load_settings
from tests.appproc import ROOT, free_port, hermetic_env
from tests.conftest import StartApp
from tests.fakes.slack_server import SlackStandIn
from tests.fakes.twochat_server import TwoChatStandIn
from tests.test_metrics import sample, scrape

CHANNEL = "C0GENERAL"
DASHBOARD = ROOT / "deploy" / "grafana" / "sms-bridge.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
METRIC_NAME = re.compile(r"\b((?:sms_bridge|process|python)_[a-z0-9_]+)\b")


def exported_names(exposition: str) -> set[str]:
    """Every sample name in an exposition, and every declared metric (one whose labels
    are only known at its first event, a Slack error code say, has no sample before)."""
    samples = {
        line.split("{")[0].split(" ")[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }
    return samples | set(re.findall(r"^# TYPE (\S+) ", exposition, re.M))


def names_in_dashboard() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


def names_in_alerts() -> set[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


def test_metrics_follow_the_conventions_from_the_first_scrape(start_app: StartApp) -> None:
    text = scrape(start_app())
    names = exported_names(text)
    assert not [name for name in names if name.endswith("_created")]
    assert 'reason=""' not in text
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names
    assert re.search(r'^sms_bridge_build_info\{python="[\d.]+",version="[^"]+"\} 1\.0$', text, re.M)
    # Series with known labels exist at 0 before their first event.
    for result in ("sent", "failed", "unknown"):
        assert f'sms_bridge_sms_total{{result="{result}"}} 0.0' in text
    assert 'sms_bridge_slack_ack_seconds_count{kind="command"} 0.0' in text
    assert 'sms_bridge_twochat_connection_failures_total{kind="send",reason="connect"} 0.0' in text
    assert 'sms_bridge_pages_acked_total{via="sms"} 0.0' in text
    assert 'sms_bridge_ready{component="database"} 1.0' in text
    counters = re.findall(r"^# TYPE (\S+) counter$", text, re.M)
    assert counters and all(name.endswith("_total") for name in counters)


def test_every_metric_the_dashboard_and_alerts_name_is_exported(start_app: StartApp) -> None:
    names = exported_names(scrape(start_app()))
    wanted = names_in_dashboard() | names_in_alerts()
    assert len(wanted) > 10
    assert wanted - names == set()


def test_slack_requests_and_their_ack_latency_are_measured(
    start_app: StartApp, slack: SlackStandIn
) -> None:
    app = start_app()
    for _ in range(2):
        assert app.command("help", "U0DEV1", CHANNEL, slack.response_url()).status_code == 200
    text = scrape(app)
    assert sample(text, "sms_bridge_slack_requests_total", kind="command") == 2
    assert sample(text, "sms_bridge_slack_ack_seconds_count", kind="command") == 2
    assert sample(text, "sms_bridge_slack_ack_seconds_bucket", kind="command", le="3.0") == 2


def test_2chat_connection_failures_are_counted(start_app: StartApp) -> None:
    app = start_app(TWOCHAT_API_URL=f"http://127.0.0.1:{free_port()}")
    app.wait_for_log("could not read 2Chat's rate limit")
    text = scrape(app)
    failures = "sms_bridge_twochat_connection_failures_total"
    assert sample(text, failures, kind="read", reason="connect") == 1
    assert sample(text, "sms_bridge_ready", component="twochat") == 0


def test_metrics_port_serves_the_operator_endpoints_apart(start_app: StartApp) -> None:
    port = free_port()
    app = start_app(METRICS_PORT=str(port))
    assert app.http.get("/metrics").status_code == 404
    assert app.http.get("/readyz").status_code == 404
    assert app.http.get("/healthz").status_code == 200
    operator = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    assert "sms_bridge_build_info" in operator.get("/metrics").text
    assert operator.get("/readyz").json() == {"ok": True}
    operator.close()


def json_lines(log: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.splitlines()]


def test_json_logs_have_fields_and_one_info_line_per_send(
    start_app: StartApp, slack: SlackStandIn, twochat: TwoChatStandIn
) -> None:
    app = start_app(LOG_FORMAT="json", LOG_LEVEL="INFO")
    app.command("db-oncall disk full", "U0DEV1", CHANNEL, slack.response_url())
    twochat.wait_for_sends(2)
    slack.wait_for_thread_reply(CHANNEL)
    app.wait_for_log("queued as")
    records = json_lines(app.log())  # every line is JSON, the first one included
    sends = [r for r in records if r["level"] == "INFO" and "+447700900123" in json.dumps(r)]
    assert sends == []  # numbers only masked
    per_send = [
        r for r in records if r["level"] == "INFO" and "/open/sms/send" in str(r["message"])
    ]
    assert per_send == []  # the client adds no second INFO line per send
    queued = [r for r in records if "queued as" in str(r["message"])]
    assert len(queued) == 2
    for record in queued:  # the Slack request that started the send, as fields
        assert record["slack_user"] == "U0DEV1" and record["channel"] == CHANNEL
        assert record["kind"] == "command" and record["event_type"] == "/sms"
        assert isinstance(record["request_id"], str)
        assert isinstance(record["send_id"], int)


@pytest.mark.app
def test_a_refusal_to_start_is_json_too(tmp_path: Path) -> None:
    env = hermetic_env(LOG_FORMAT="json", SLACK_BOT_TOKEN="not-a-bot-token")
    command = [sys.executable, "-m", "bot"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=9)
    assert done.returncode == 2
    [record] = json_lines(done.stderr)
    assert record["level"] == "ERROR"
    assert "SLACK_BOT_TOKEN must start with 'xoxb-'" in str(record["message"])


def test_metrics_port_is_checked_with_the_other_settings() -> None:
    good = {
        "SLACK_BOT_TOKEN": "xoxb-1-secret-bot",
        "SLACK_SIGNING_SECRET": "signing-secret-value",
        "TWOCHAT_API_KEY": "UAK-secret-key",
    }
    assert load_settings(good).metrics_port is None
    assert load_settings({**good, "METRICS_PORT": "9090"}).metrics_port == 9090
    with pytest.raises(SettingsError) as caught:
        load_settings({**good, "PORT": "9090", "METRICS_PORT": "9090"})
    assert caught.value.problems == ["METRICS_PORT must differ from PORT"]
    with pytest.raises(SettingsError) as caught:
        load_settings({**good, "METRICS_PORT": "metrics"})
    assert caught.value.problems == ["METRICS_PORT must be a whole number"]
