"""Prometheus metrics, served at ``GET /metrics``.

Event counts are kept in-process (they reset at restart, as Prometheus expects of counters);
state that lives in the database (approvals pending, pages open) and readiness are read when
scraped. One registry per process, passed in like every other component. Every series whose
labels are known in advance exists from the start at 0, so ``rate()`` and ``absent()`` work
before the first event; no ``_created`` series are exported. deploy/ holds a Grafana
dashboard and alert rules built on these names, and a test keeps them in step.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from bot.sms.twochat import FAILURE_REASONS, SEND_PATH

CONTENT_TYPE = CONTENT_TYPE_LATEST
# ``_created`` doubles every counter's series for a timestamp no dashboard here uses.
disable_created_metrics()  # type: ignore[no-untyped-call]

SMS_RESULTS = ("sent", "failed", "unknown")
TWOCHAT_KINDS = ("send", "read")
PAGE_ACKS = ("sms", "button", "reaction")
# What Slack delivers: slash commands, interactions (buttons, forms, shortcuts), events.
SLACK_KINDS = ("command", "interaction", "event", "other")
READINESS_COMPONENTS = ("database", "slack", "twochat", "socket_mode")
# Slack waits 3 s for an answer; the buckets are finest where that is at stake.
ACK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0)


def build_version() -> str:
    try:
        return package_version("sms-bridge")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class Metrics:
    """Every metric the bridge exposes; docs list them with what each is for."""

    def __init__(self) -> None:
        """Long because it declares every metric, with its help text, in one place."""
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        Info("sms_bridge_build", "The running sms-bridge's version", registry=registry).info(
            {"version": build_version(), "python": platform.python_version()}
        )
        self.sms = Counter(
            "sms_bridge_sms",
            "SMS by how they ended: sent, failed or unknown",
            ["result"],
            registry=registry,
        )
        self.sms_failures = Counter(
            "sms_bridge_sms_failures",
            "SMS not sent (failed) or maybe sent (unknown), by reason (e.g. http_402, no_answer)",
            ["result", "reason"],
            registry=registry,
        )
        self.twochat_requests = Counter(
            "sms_bridge_twochat_requests",
            "2Chat API answers by kind (send, read) and HTTP status; each call costs a credit",
            ["kind", "status"],
            registry=registry,
        )
        self.twochat_latency = Histogram(
            "sms_bridge_twochat_latency_seconds",
            "2Chat API call latency by kind",
            ["kind"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20),
            registry=registry,
        )
        self.twochat_rate_limited = Counter(
            "sms_bridge_twochat_rate_limited", "2Chat answers with HTTP 429", registry=registry
        )
        self.twochat_failures = Counter(
            "sms_bridge_twochat_connection_failures",
            "2Chat calls that got no answer, by kind and reason (connect, connect_timeout, "
            "read_timeout, disconnected, busy)",
            ["kind", "reason"],
            registry=registry,
        )
        self.slack_requests = Counter(
            "sms_bridge_slack_requests",
            "Requests from Slack (HTTP or Socket Mode) by kind: command, interaction, event",
            ["kind"],
            registry=registry,
        )
        self.slack_ack = Histogram(
            "sms_bridge_slack_ack_seconds",
            "Time from a Slack request's arrival to its answer; Slack gives up after 3 s",
            ["kind"],
            buckets=ACK_BUCKETS,
            registry=registry,
        )
        self.slack_errors = Counter(
            "sms_bridge_slack_api_errors",
            "Slack Web API calls that failed, by method and Slack's error code",
            ["method", "error"],
            registry=registry,
        )
        self.pacer_waiting = Gauge(
            "sms_bridge_pacer_waiting_sends",
            "Sends waiting for the 2Chat pacer",
            registry=registry,
        )
        self.approvals_pending = Gauge(
            "sms_bridge_approvals_pending", "Requests waiting for an approver", registry=registry
        )
        self.pages_open = Gauge(
            "sms_bridge_pages_open",
            "Escalating pages waiting for their first ack",
            registry=registry,
        )
        self.pages_acked = Counter(
            "sms_bridge_pages_acked",
            "Escalating pages acknowledged, by how (sms, button, reaction)",
            ["via"],
            registry=registry,
        )
        self.requests_sending = Gauge(
            "sms_bridge_requests_sending",
            "Requests (texts and pages) whose sends are under way",
            registry=registry,
        )
        self.ready = Gauge(
            "sms_bridge_ready",
            "1 when the component lets this process work, 0 when /readyz names it",
            ["component"],
            registry=registry,
        )
        self._start_every_series()

    def _start_every_series(self) -> None:
        """Create each series whose labels are known, at 0, before its first event."""
        for result in SMS_RESULTS:
            self.sms.labels(result)
        for kind in TWOCHAT_KINDS:
            self.twochat_latency.labels(kind)
            for reason in FAILURE_REASONS:
                self.twochat_failures.labels(kind, reason)
        for kind in SLACK_KINDS:
            self.slack_requests.labels(kind)
            self.slack_ack.labels(kind)
        for via in PAGE_ACKS:
            self.pages_acked.labels(via)
        self.observe_readiness({})

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

    def observe_sms(self, result: str, reason: str = "") -> None:
        self.sms.labels(result).inc()
        if result != "sent":
            self.sms_failures.labels(result, reason or "unknown").inc()

    def observe_slack_request(self, kind: str, seconds: float) -> None:
        kind = kind if kind in SLACK_KINDS else "other"
        self.slack_requests.labels(kind).inc()
        self.slack_ack.labels(kind).observe(seconds)

    def observe_slack_error(self, method: str, error: str) -> None:
        self.slack_errors.labels(method, error).inc()

    def observe_readiness(self, problems: dict[str, str]) -> None:
        for component in READINESS_COMPONENTS:
            self.ready.labels(component).set(0 if component in problems else 1)

    def exposition(self) -> bytes:
        exposition: bytes = generate_latest(self.registry)
        return exposition
