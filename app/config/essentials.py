"""The settings the README's first table names: database, relays, public URL, keys, sender."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from app.config import parsing

DEFAULT_FROM = "The AI Morning Post <news@morningpost.example>"


class EssentialSettings(BaseModel):
    """Where the data lives, how mail leaves, where links point, what signs and who sends."""

    database_url: str = "sqlite:///./var/morningpost.db"
    smtp_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    secret_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    from_address: str = Field(default="", alias="MORNINGPOST_FROM")
    var_dir: Path = Path("./var")

    _check_db = field_validator("database_url")(parsing.check_database_url)
    _check_smtp = field_validator("smtp_url")(parsing.check_smtp_url)
    _check_base = field_validator("base_url")(parsing.check_base_url)
    _split_keys = field_validator("secret_keys", mode="before")(parsing.split_keys)
    _check_from = field_validator("from_address")(parsing.check_from)
