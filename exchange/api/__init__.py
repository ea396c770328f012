"""HTTP controllers, by who calls them. Controllers stay thin: parse, authorise, call a service."""

from exchange.api.auction import ExplainController, PingController, PostController, TraceController
from exchange.api.calls import CallController
from exchange.api.campaigns import CampaignController
from exchange.api.channels import CHANNEL_ROUTES
from exchange.api.crm import CrmConnectionController, LeadCrmController
from exchange.api.finance import LedgerController, MyLedgerController
from exchange.api.health import health
from exchange.api.leads import LeadController
from exchange.api.notifications import AgentStreamController, NotificationController
from exchange.api.ops import OpsController
from exchange.api.outcomes import OutcomeController, PostbackInfoController, outcome_postback
from exchange.api.parties import KeyController, MeController, PartyController
from exchange.api.reports import ReportController
from exchange.api.returns import PurchaseController, ReturnController
from exchange.api.teams import (
    AgentController,
    OfferController,
    OwnedLeadController,
    TeamConfigController,
    TeamRouteController,
)
from exchange.api.terms import (
    BuyerAccountController,
    MyAccountController,
    MyTermsController,
    SupplierTermsController,
)
from exchange.api.verticals import VerticalController

ROUTES = [
    health,
    MeController,
    PartyController,
    KeyController,
    VerticalController,
    LeadController,
    PingController,
    PostController,
    TraceController,
    ExplainController,
    CallController,
    CampaignController,
    BuyerAccountController,
    MyAccountController,
    SupplierTermsController,
    MyTermsController,
    LedgerController,
    MyLedgerController,
    ReturnController,
    PurchaseController,
    TeamConfigController,
    TeamRouteController,
    AgentController,
    OfferController,
    OwnedLeadController,
    NotificationController,
    AgentStreamController,
    OutcomeController,
    PostbackInfoController,
    outcome_postback,
    CrmConnectionController,
    LeadCrmController,
    ReportController,
    OpsController,
    *CHANNEL_ROUTES,
]

__all__ = ["ROUTES"]
