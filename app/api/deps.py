"""Request dependencies: the app's shared parts and a unit of work per request."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.clock import Clock, system_clock
from app.db.engine import Database
from app.settings import Settings


@dataclass
class Services:
    """What the app's lifespan builds once and every request shares."""

    settings: Settings
    db: Database
    clock: Clock = field(default=system_clock)
    # The in-process delivery worker, when this process runs one (woken on new rows).
    delivery: Any = None


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def read_session(services: ServicesDep) -> Iterator[Session]:
    with services.db.transaction(write=False) as session:
        yield session


def write_session(services: ServicesDep) -> Iterator[Session]:
    with services.db.transaction(write=True) as session:
        yield session


ReadSession = Annotated[Session, Depends(read_session)]
WriteSession = Annotated[Session, Depends(write_session)]
