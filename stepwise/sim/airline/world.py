"""The airline world: one database plus the operations an agent may perform on it.

Every write checks all of the policy and every name first and only then mutates, so a
refused call leaves the database exactly as it was. New reservation ids come from the
arguments and the number of reservations, so one sequence of actions always gives one
final state.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from langchain_core.tools import BaseTool, ToolException

from stepwise.sim.airline.db import (
    CABINS,
    AirlineDB,
    Cabin,
    Flight,
    Passenger,
    Payment,
    Reservation,
    ReservedFlight,
    User,
    load_db,
)

MAX_PASSENGERS = 5
INSURANCE_PER_PASSENGER = 30
FREE_CANCELLATION = dt.timedelta(hours=24)
TRANSFER_MESSAGE = "Transfer successful. A human agent will take over this conversation."
_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class PolicyViolation(ToolException):
    """A tool call the policy forbids, or one naming something that does not exist."""


@cache
def policy_text() -> str:
    """The written policy the agent must follow (its system prompt)."""
    return resources.files("stepwise.sim.airline").joinpath("data/policy.md").read_text("utf-8")


def to_json(value: Any) -> str:
    """Compact JSON, the form every tool answers in."""
    return json.dumps(value, separators=(",", ":"))


class AirlineWorld:
    """A fresh simulated airline database and the tools that read and change it."""

    def __init__(self, db: AirlineDB | None = None) -> None:
        self.db = db if db is not None else load_db()
        self.policy = policy_text()
        self._tools: list[BaseTool] | None = None

    def state(self) -> dict[str, Any]:
        return self.db.state()

    def tools(self) -> list[BaseTool]:
        """The agent's tools, bound to this world."""
        if self._tools is None:
            from stepwise.sim.airline.tools import build_tools

            self._tools = build_tools(self)
        return list(self._tools)

    def apply(self, name: str, args: dict[str, Any]) -> str:
        """Run one tool by name, validating ``args`` exactly as an agent's call would be."""
        tool = next((t for t in self.tools() if t.name == name), None)
        if tool is None:
            known = ", ".join(t.name for t in self.tools())
            raise PolicyViolation(f"There is no tool named {name!r} (tools: {known}).")
        return tool.invoke(args)

    # Lookups: each raises PolicyViolation for a name that does not exist.

    def _user(self, user_id: str) -> User:
        user = self.db.users.get(user_id)
        if user is None:
            raise PolicyViolation(f"No user has the id {user_id!r}.")
        return user

    def _reservation(self, reservation_id: str) -> Reservation:
        reservation = self.db.reservations.get(reservation_id)
        if reservation is None:
            raise PolicyViolation(f"No reservation has the id {reservation_id!r}.")
        return reservation

    def _active(self, reservation_id: str) -> Reservation:
        reservation = self._reservation(reservation_id)
        if reservation.status == "cancelled":
            raise PolicyViolation(f"Reservation {reservation_id} is cancelled and cannot be "
                                  "changed.")
        return reservation

    def _itinerary(self, flight_numbers: Sequence[str]) -> list[Flight]:
        """The flights, checked to exist and to connect one to the next."""
        if not flight_numbers:
            raise PolicyViolation("A reservation needs at least one flight.")
        if len(set(flight_numbers)) != len(flight_numbers):
            raise PolicyViolation("The same flight appears twice in the itinerary.")
        flights = []
        for number in flight_numbers:
            flight = self.db.flights.get(number)
            if flight is None:
                raise PolicyViolation(f"No flight has the number {number!r}.")
            flights.append(flight)
        for before, after in itertools.pairwise(flights):
            if after.origin != before.destination:
                raise PolicyViolation(f"Flight {after.flight_number} leaves from {after.origin}, "
                                      f"not {before.destination} where {before.flight_number} "
                                      "lands.")
            if (after.date, after.departure_time) <= (before.date, before.arrival_time):
                raise PolicyViolation(f"Flight {after.flight_number} departs before "
                                      f"{before.flight_number} arrives.")
        return flights

    def _check_seats(self, flights: Sequence[Flight], cabin: Cabin, count: int) -> None:
        for flight in flights:
            if flight.available_seats[cabin] < count:
                raise PolicyViolation(f"Flight {flight.flight_number} has only "
                                      f"{flight.available_seats[cabin]} {cabin} seats left; "
                                      f"{count} are needed.")

    def _check_can_charge(self, user: User, payment_id: str, amount: int) -> None:
        method = user.payment_methods.get(payment_id)
        if method is None:
            owner = next((u.user_id for u in self.db.users.values()
                          if payment_id in u.payment_methods), None)
            where = "belongs to another user" if owner else "does not exist"
            raise PolicyViolation(f"Payment method {payment_id!r} {where}; only the user's own "
                                  f"payment methods may be used.")
        if method.source == "gift_card" and amount > (method.balance or 0):
            raise PolicyViolation(f"Gift card {payment_id} has a balance of ${method.balance}, "
                                  f"less than the ${amount} needed.")

    def _charge(self, reservation: Reservation, payment_id: str, amount: int) -> None:
        """Record a charge (or a refund, when negative); gift card balances follow."""
        if amount == 0:
            return
        method = self.db.users[reservation.user_id].payment_methods.get(payment_id)
        if method is not None and method.source == "gift_card":
            method.balance = (method.balance or 0) - amount
        reservation.payment_history.append(Payment(payment_id=payment_id, amount=amount))

    def _new_reservation_id(self, key: dict[str, Any]) -> str:
        salt = len(self.db.reservations)
        while True:
            digest = hashlib.sha256(to_json({"n": salt, **key}).encode()).digest()
            rid = "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:6])
            if rid not in self.db.reservations:
                return rid
            salt += 1

    # Reads.

    def get_user(self, user_id: str) -> str:
        return to_json(self._user(user_id).model_dump(mode="json"))

    def get_reservation(self, reservation_id: str) -> str:
        return to_json(self._reservation(reservation_id).model_dump(mode="json"))

    def search_flights(self, origin: str, destination: str, date: dt.date | str) -> str:
        day = dt.date.fromisoformat(str(date))
        found = [f.model_dump(mode="json") for f in self.db.flights.values()
                 if (f.origin, f.destination, f.date) == (origin.upper(), destination.upper(), day)]
        return to_json(found)

    def transfer_to_human(self, summary: str) -> str:
        return TRANSFER_MESSAGE

    # Writes.

    def book_reservation(self, user_id: str, flight_numbers: Sequence[str], cabin: Cabin,
                         passengers: Sequence[Passenger | dict], payment_id: str,
                         insurance: bool) -> str:
        user = self._user(user_id)
        people = [Passenger.model_validate(p, from_attributes=True) for p in passengers]
        if not people:
            raise PolicyViolation("A reservation needs at least one passenger.")
        if len(people) > MAX_PASSENGERS:
            raise PolicyViolation(f"A reservation can have at most {MAX_PASSENGERS} passengers, "
                                  f"not {len(people)}.")
        flights = self._itinerary(flight_numbers)
        self._check_seats(flights, cabin, len(people))
        fare = sum(f.prices[cabin] for f in flights)
        total = len(people) * (fare + (INSURANCE_PER_PASSENGER if insurance else 0))
        self._check_can_charge(user, payment_id, total)

        key = {"user_id": user_id, "flights": list(flight_numbers), "cabin": cabin,
               "passengers": [p.model_dump(mode="json") for p in people]}
        reservation = Reservation(
            reservation_id=self._new_reservation_id(key), user_id=user_id,
            origin=flights[0].origin, destination=flights[-1].destination,
            flights=[_segment(f, cabin) for f in flights], cabin=cabin, passengers=people,
            created_at=self.db.now, insurance=insurance, status="active", payment_history=[])
        for flight in flights:
            flight.available_seats[cabin] -= len(people)
        self.db.reservations[reservation.reservation_id] = reservation
        user.reservations.append(reservation.reservation_id)
        self._charge(reservation, payment_id, total)
        return to_json(reservation.model_dump(mode="json"))

    def cancel_reservation(self, reservation_id: str) -> str:
        reservation = self._reservation(reservation_id)
        if reservation.status == "cancelled":
            raise PolicyViolation(f"Reservation {reservation_id} is already cancelled.")
        if self.db.now - reservation.created_at > FREE_CANCELLATION and not reservation.insurance:
            booked = reservation.created_at.strftime("%Y-%m-%d %H:%M")
            raise PolicyViolation(
                f"Reservation {reservation_id} was booked at {booked}, more than 24 hours ago, "
                "and has no travel insurance; it can be cancelled only within 24 hours of "
                "booking or with insurance.")

        for segment in reservation.flights:
            self._release(segment.flight_number, reservation.cabin, len(reservation.passengers))
        paid: dict[str, int] = {}
        for payment in reservation.payment_history:
            paid[payment.payment_id] = paid.get(payment.payment_id, 0) + payment.amount
        for payment_id, amount in paid.items():
            self._charge(reservation, payment_id, -amount)
        reservation.status = "cancelled"
        return to_json(reservation.model_dump(mode="json"))

    def change_flight(self, reservation_id: str, flight_numbers: Sequence[str]) -> str:
        reservation = self._active(reservation_id)
        if reservation.cabin == "basic_economy":
            raise PolicyViolation(f"Reservation {reservation_id} is basic economy; its flights "
                                  "cannot be changed.")
        flights = self._itinerary(flight_numbers)
        if (flights[0].origin, flights[-1].destination) != (reservation.origin,
                                                            reservation.destination):
            raise PolicyViolation(
                f"The new flights go from {flights[0].origin} to {flights[-1].destination}; a "
                f"change must keep the reservation's {reservation.origin} to "
                f"{reservation.destination}.")
        kept = {s.flight_number: s for s in reservation.flights}
        if list(flight_numbers) == list(kept):
            raise PolicyViolation(f"Reservation {reservation_id} is already on these flights.")
        count = len(reservation.passengers)
        added = [f for f in flights if f.flight_number not in kept]
        self._check_seats(added, reservation.cabin, count)
        segments = [kept.get(f.flight_number) or _segment(f, reservation.cabin) for f in flights]
        difference = count * (sum(s.price for s in segments) - _fare(reservation))
        payment_id = reservation.payment_history[0].payment_id
        self._check_can_charge(self.db.users[reservation.user_id], payment_id, difference)

        new_numbers = {f.flight_number for f in flights}
        for number in kept:
            if number not in new_numbers:
                self._release(number, reservation.cabin, count)
        for flight in added:
            flight.available_seats[reservation.cabin] -= count
        reservation.flights = segments
        self._charge(reservation, payment_id, difference)
        return to_json(reservation.model_dump(mode="json"))

    def change_cabin(self, reservation_id: str, cabin: Cabin) -> str:
        reservation = self._active(reservation_id)
        if cabin not in CABINS:
            raise PolicyViolation(f"Unknown cabin {cabin!r}; cabins are {', '.join(CABINS)}.")
        if cabin == reservation.cabin:
            raise PolicyViolation(f"Reservation {reservation_id} is already in {cabin}.")
        count = len(reservation.passengers)
        flights = [self.db.flights[s.flight_number] for s in reservation.flights]
        self._check_seats(flights, cabin, count)
        segments = [_segment(f, cabin) for f in flights]
        difference = count * (sum(s.price for s in segments) - _fare(reservation))
        payment_id = reservation.payment_history[0].payment_id
        self._check_can_charge(self.db.users[reservation.user_id], payment_id, difference)

        for flight in flights:
            flight.available_seats[reservation.cabin] += count
            flight.available_seats[cabin] -= count
        reservation.cabin = cabin
        reservation.flights = segments
        self._charge(reservation, payment_id, difference)
        return to_json(reservation.model_dump(mode="json"))

    def _release(self, flight_number: str, cabin: Cabin, count: int) -> None:
        flight = self.db.flights.get(flight_number)
        if flight is not None:
            flight.available_seats[cabin] += count


def _segment(flight: Flight, cabin: Cabin) -> ReservedFlight:
    return ReservedFlight(flight_number=flight.flight_number, origin=flight.origin,
                          destination=flight.destination, date=flight.date,
                          price=flight.prices[cabin])


def _fare(reservation: Reservation) -> int:
    """What one passenger paid for the flights, insurance excluded."""
    return sum(s.price for s in reservation.flights)
