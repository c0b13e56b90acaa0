"""The Bolt app: one place that registers every Slack surface's listeners."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import (
    warning_client_prioritized_and_token_skipped,
    warning_token_skipped,
)
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.listeners import (
    approvals,
    commands,
    compose_modal,
    home,
    pager_board,
    paging,
    shortcuts,
)
from bot.slack.listeners.deps import Bridge
from bot.slack.render.refusals import describe_error
from bot.slack.transport.identity import SlackIdentity


class _SameTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself, then warns at every start
    that the client's token wins over it, and that ``authorize`` wins over both: it is the
    same token each time, so the warnings are noise."""

    NOISE = frozenset({warning_client_prioritized_and_token_skipped(), warning_token_skipped()})

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self.NOISE


def bolt_authorize(identity: SlackIdentity) -> Callable[..., Awaitable[AuthorizeResult]]:
    """``identity.authorize`` as Bolt calls it: Bolt passes arguments by the names it reads
    from the function, and would take a method's ``self`` for one of them."""

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return await identity.authorize(enterprise_id, team_id, user_id)

    return authorize


def build_app(
    bridge: Bridge,
    client: AsyncWebClient,
    signing_secret: str | None,
    socket_mode: bool,
    identity: SlackIdentity,
) -> AsyncApp:
    """The Bolt app with every listener. Bolt verifies each HTTP request's signature;
    ``identity`` authorizes each request without a call to Slack."""
    # Bolt logs whole request and response bodies at DEBUG, phone numbers included.
    bolt_logger = logging.getLogger("slack_bolt.AsyncApp")
    bolt_logger.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.INFO))
    bolt_logger.addFilter(_SameTokenWarning())
    app = AsyncApp(
        logger=bolt_logger,
        client=client,
        authorize=bolt_authorize(identity),
        signing_secret=signing_secret or "",
        request_verification_enabled=not socket_mode,
        raise_error_for_unhandled_request=False,
        # Answer Slack when the listener returns: no 10 ms polling for the ack. Listeners
        # ack, then hand any further work to the bridge's runner and return.
        process_before_response=True,
    )
    for surface in (commands, approvals, compose_modal, paging, pager_board, shortcuts, home):
        surface.register(app, bridge)

    @app.error
    async def on_error(error: Exception, request: AsyncBoltRequest) -> BoltResponse | None:
        """Log the failure; the ack a listener gave before it failed is what Slack gets
        (Bolt's 500 only when nothing was acked)."""
        describe_error(error)
        return request.context.ack.response

    return app
