"""Connectors from the cloud to other services: the Azure AD (Entra ID) user sync."""

from cloud.connectors.azure_ad import AzureAdSync, RoundResult
from cloud.connectors.azure_ad_settings import AzureAdChange, AzureAdStatus
from cloud.connectors.azure_records import AttributeMapping
from cloud.connectors.errors import AzureAdRefused, AzureAdUnavailable
from cloud.connectors.graph_delta import GraphLimits
from cloud.connectors.sealing import SecretBox

__all__ = [
    "AttributeMapping",
    "AzureAdChange",
    "AzureAdRefused",
    "AzureAdStatus",
    "AzureAdSync",
    "AzureAdUnavailable",
    "GraphLimits",
    "RoundResult",
    "SecretBox",
]
