"""The abstract ``Store``: every query of the bridge, gathered from one mixin per concern.

A backend subclasses it and supplies only connections, column types and locks (see
``core.StoreCore``), so SQLite and PostgreSQL answer every query alike.
"""

from __future__ import annotations

from bot.store.budget import BudgetQueries
from bot.store.escalations import EscalationQueries
from bot.store.intake import IntakeQueries
from bot.store.leases import LeaseQueries
from bot.store.replies import ReplyQueries
from bot.store.reports import ReportQueries
from bot.store.requests import RequestQueries
from bot.store.retention import RetentionQueries
from bot.store.sends import SendQueries


class Store(
    EscalationQueries,
    RequestQueries,
    SendQueries,
    ReplyQueries,
    ReportQueries,
    LeaseQueries,
    IntakeQueries,
    RetentionQueries,
    BudgetQueries,
):
    """Every query of the bridge; subclasses supply connections, types and locks."""
