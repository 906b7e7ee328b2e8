"""Deliverability: DKIM signing (all three or none), VERP bounces and list hygiene."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from app.config import parsing


class DeliverabilitySettings(BaseModel):
    """How mail proves where it comes from, where bounces return, and whom to stop mailing."""

    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key_path: Path | None = Field(default=None, validate_default=True)
    bounce_domain: str = ""  # the VERP return-path domain; empty = the From domain
    soft_bounce_threshold: int = Field(default=3, ge=1)
    soft_bounce_window_days: int = Field(default=30, ge=1)
    # Sign-ups that never confirm are deleted after this many days (they never consented).
    pending_purge_days: int = Field(default=14, ge=1)

    _check_label = field_validator("dkim_selector", "dkim_domain", "bounce_domain")(
        parsing.check_dns_name
    )

    @field_validator("dkim_private_key_path")
    @classmethod
    def _check_dkim(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # Runs after the selector and domain (field order), so it can see all three.
        given = {
            "MORNINGPOST_DKIM_SELECTOR": bool(info.data.get("dkim_selector")),
            "MORNINGPOST_DKIM_DOMAIN": bool(info.data.get("dkim_domain")),
            "MORNINGPOST_DKIM_PRIVATE_KEY_PATH": value is not None and str(value) != "",
        }
        if not any(given.values()):
            return None
        if not all(given.values()):
            missing = ", ".join(k for k, ok in given.items() if not ok)
            raise ValueError(f"DKIM needs the selector, the domain and the key; missing {missing}")
        assert value is not None
        return parsing.check_dkim_key_file(value)
