"""Request and response bodies of ``/v1/universes``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.market.universes import MAX_MEMBERS

# A symbol as given (``app.market.symbols.canonical`` checks it: at most 32 once trimmed).
SymbolText = Annotated[str, Field(min_length=1, max_length=40, examples=["IWM"])]


class UniverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbols: list[SymbolText] = Field(
        max_length=MAX_MEMBERS,
        description=f"The whole list (it replaces the stored one); at most {MAX_MEMBERS:,}. "
        "New symbols are tracked; the next poll backfills them.",
        examples=[["CRDO", "IONQ", "BRK.B"]],
    )


class UniverseSummary(BaseModel):
    name: str = Field(examples=["small-caps"])
    members: int = Field(description="How many symbols it holds")
    created_at: datetime
    updated_at: datetime


class UniverseList(BaseModel):
    universes: list[UniverseSummary]


class UniverseOut(UniverseSummary):
    symbols: list[str] = Field(description="Its members, in symbol order")


class UniverseReplaced(UniverseOut):
    created: bool = Field(description="True when this request created the universe")
    newly_tracked: list[str] = Field(
        description="Members that were not tracked before (the next poll backfills them)"
    )
