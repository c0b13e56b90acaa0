"""Prometheus metrics, served at ``GET /metrics``.

Event counts are kept in-process (they reset at restart, as Prometheus expects of counters);
state that lives in the database (approvals pending, pages open) is read when scraped.
One registry per process, passed in like every other component.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.sms.twochat import SEND_PATH

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Every metric the bridge exposes; README's "Metrics" table lists them."""

    def __init__(self) -> None:
        """Long because it declares every metric, with its help text, in one place."""
        self.registry = CollectorRegistry()
        self.sms = Counter(
            "sms_bridge_sms",
            "SMS by outcome (sent, failed, unknown) and reason (e.g. http_402)",
            ["result", "reason"],
            registry=self.registry,
        )
        self.twochat_requests = Counter(
            "sms_bridge_twochat_requests",
            "2Chat API calls by kind (send, read) and HTTP status; each one costs a credit",
            ["kind", "status"],
            registry=self.registry,
        )
        self.twochat_latency = Histogram(
            "sms_bridge_twochat_latency_seconds",
            "2Chat API call latency by kind",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20),
            registry=self.registry,
        )
        self.twochat_rate_limited = Counter(
            "sms_bridge_twochat_rate_limited",
            "2Chat answers with HTTP 429",
            registry=self.registry,
        )
        self.twochat_failures = Counter(
            "sms_bridge_twochat_connection_failures",
            "2Chat calls that got no answer, by kind and reason (connect, connect_timeout, "
            "read_timeout, disconnected, busy)",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.slack_errors = Counter(
            "sms_bridge_slack_api_errors",
            "Slack Web API calls that failed, by method and Slack's error code",
            ["method", "error"],
            registry=self.registry,
        )
        self.pacer_waiting = Gauge(
            "sms_bridge_pacer_waiting_sends",
            "Sends waiting for the 2Chat pacer",
            registry=self.registry,
        )
        self.approvals_pending = Gauge(
            "sms_bridge_approvals_pending",
            "Requests waiting for an approver",
            registry=self.registry,
        )
        self.pages_open = Gauge(
            "sms_bridge_pages_open",
            "Escalating pages waiting for their first ack",
            registry=self.registry,
        )
        self.pages_acked = Counter(
            "sms_bridge_pages_acked",
            "Escalating pages acknowledged, by how (sms, button, reaction)",
            ["via"],
            registry=self.registry,
        )
        self.requests_sending = Gauge(
            "sms_bridge_requests_sending",
            "Requests (texts and pages) whose sends are under way",
            registry=self.registry,
        )

    def observe_page_ack(self, via: str) -> None:
        self.pages_acked.labels(via).inc()

    def observe_twochat(self, path: str, status: int, seconds: float) -> None:
        kind = "send" if path == SEND_PATH else "read"
        self.twochat_requests.labels(kind, str(status)).inc()
        self.twochat_latency.labels(kind).observe(seconds)
        if status == 429:
            self.twochat_rate_limited.inc()

    def observe_twochat_failure(self, path: str, reason: str) -> None:
        kind = "send" if path == SEND_PATH else "read"
        self.twochat_failures.labels(kind, reason).inc()

    def observe_sms(self, result: str, reason: str) -> None:
        self.sms.labels(result, reason).inc()

    def observe_slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(method, error).inc()

    def exposition(self) -> bytes:
        exposition: bytes = generate_latest(self.registry)
        return exposition
