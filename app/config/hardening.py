"""Hardening (issue 9): whose X-Forwarded-For/-Proto to believe, and which Host names."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from app.config import parsing


class HardeningSettings(BaseModel):
    """The proxies trusted to name the client, and the Host names answered."""

    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list
    )
    # Host names answered besides BASE_URL's and localhost (e.g. "news.example.org,www.…").
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)

    _split_proxies = field_validator("trusted_proxies", mode="before")(parsing.split_networks)
    _split_hosts = field_validator("allowed_hosts", mode="before")(parsing.split_hosts)
