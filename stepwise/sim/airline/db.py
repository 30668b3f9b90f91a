"""The airline database: users, flights and reservations, as validated pydantic models.

The JSON ships with the package and is read once; every ``load_db`` returns a fresh copy,
so one episode's writes never leak into the next. ``state()`` is the plain form two worlds
are compared in.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Cabin = Literal["basic_economy", "economy", "business"]
CABINS: tuple[Cabin, ...] = ("basic_economy", "economy", "business")


class Record(BaseModel):
    """Base for every database record: unknown fields are an error, not silently kept."""

    model_config = ConfigDict(extra="forbid")


class PaymentMethod(Record):
    id: str
    source: Literal["credit_card", "gift_card"]
    last_four: str | None = None
    balance: int | None = Field(default=None, description="Gift cards only, in whole dollars.")


class User(Record):
    user_id: str
    name: str
    email: str
    membership: Literal["gold", "silver", "regular"]
    payment_methods: dict[str, PaymentMethod]
    reservations: list[str] = Field(default_factory=list)


class Flight(Record):
    """One scheduled flight on one date, with its current prices and free seats per cabin."""

    flight_number: str
    origin: str
    destination: str
    date: dt.date
    departure_time: str = Field(pattern=r"^\d\d:\d\d$")
    arrival_time: str = Field(pattern=r"^\d\d:\d\d$")
    prices: dict[Cabin, int]
    available_seats: dict[Cabin, int]


class Passenger(Record):
    first_name: str
    last_name: str
    dob: dt.date


class ReservedFlight(Record):
    """One segment of a reservation, with the per-passenger price paid for it."""

    flight_number: str
    origin: str
    destination: str
    date: dt.date
    price: int


class Payment(Record):
    """A charge (positive) or refund (negative) on one of the user's payment methods."""

    payment_id: str
    amount: int


class Reservation(Record):
    reservation_id: str
    user_id: str
    origin: str
    destination: str
    flights: list[ReservedFlight]
    cabin: Cabin
    passengers: list[Passenger]
    created_at: dt.datetime
    insurance: bool
    status: Literal["active", "cancelled"]
    payment_history: list[Payment]


class AirlineDB(Record):
    now: dt.datetime = Field(description="The world's fixed clock.")
    users: dict[str, User]
    flights: dict[str, Flight]
    reservations: dict[str, Reservation]

    def state(self) -> dict[str, Any]:
        """The whole database as plain JSON values, for exact comparison."""
        return self.model_dump(mode="json")


@cache
def _raw_db() -> str:
    return resources.files("stepwise.sim.airline").joinpath("data/db.json").read_text("utf-8")


def load_db() -> AirlineDB:
    """A fresh, independent copy of the shipped database."""
    return AirlineDB.model_validate(json.loads(_raw_db()))
