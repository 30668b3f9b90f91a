"""The airline tools as the model sees them: names, argument schemas and descriptions.

Each tool is a thin binding of one ``AirlineWorld`` method; the rules live in the world.
Errors are raised, never turned into text here (``handle_tool_error=False``): the agent's
executor decides how a refused call reads.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from stepwise.sim.airline.db import Cabin, Passenger

if TYPE_CHECKING:
    from stepwise.sim.airline.world import AirlineWorld


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserArgs(Args):
    user_id: str = Field(description="The user's id, such as 'mia_li_3668'.")


class ReservationArgs(Args):
    reservation_id: str = Field(description="The reservation id, such as '4WQ150'.")


class SearchArgs(Args):
    origin: str = Field(description="IATA code of the departure airport, such as 'JFK'.")
    destination: str = Field(description="IATA code of the arrival airport, such as 'ORD'.")
    date: dt.date = Field(description="Departure date, YYYY-MM-DD.")


class BookArgs(Args):
    user_id: str = Field(description="Id of the user who books and pays.")
    flight_numbers: list[str] = Field(
        description="Flight numbers in travel order; consecutive flights must connect.")
    cabin: Cabin = Field(description="Cabin for every passenger and flight.")
    passengers: list[Passenger] = Field(description="Travellers: first_name, last_name, dob "
                                                    "(YYYY-MM-DD).")
    payment_id: str = Field(description="Id of one of the user's own payment methods, such as "
                                        "'credit_card_4421' or 'gift_card_7710'.")
    insurance: bool = Field(description="Travel insurance, $30 per passenger.")


class ChangeFlightArgs(Args):
    reservation_id: str = Field(description="The reservation to change.")
    flight_numbers: list[str] = Field(
        description="The complete new itinerary in travel order (keep unchanged segments).")


class ChangeCabinArgs(Args):
    reservation_id: str = Field(description="The reservation to change.")
    cabin: Cabin = Field(description="The new cabin, for all passengers and all flights.")


class TransferArgs(Args):
    summary: str = Field(description="A short summary of the user's issue for the human agent.")


def build_tools(world: AirlineWorld) -> list[BaseTool]:
    """The eight airline tools, each calling ``world``."""
    specs = [
        (world.get_user, UserArgs,
         ("Get a user's profile: name, membership, payment methods (with gift card balances) "
          "and reservation ids.")),
        (world.get_reservation, ReservationArgs,
         ("Get a reservation: flights, cabin, passengers, insurance, status, booking time and "
          "payment history.")),
        (world.search_flights, SearchArgs,
         ("Search direct flights from origin to destination on a date, with prices and "
          "available seats per cabin.")),
        (world.book_reservation, BookArgs,
         ("Book a new reservation and charge the total (fares plus any insurance, for every "
          "passenger) to the given payment method.")),
        (world.cancel_reservation, ReservationArgs,
         "Cancel a whole reservation and refund it to the original payment methods."),
        (world.change_flight, ChangeFlightArgs,
         ("Replace a reservation's flights, keeping its origin, destination, cabin and "
          "passengers; the fare difference is charged or refunded to the original payment "
          "method.")),
        (world.change_cabin, ChangeCabinArgs,
         ("Move every passenger on every flight of a reservation to another cabin; the fare "
          "difference is charged or refunded to the original payment method.")),
        (world.transfer_to_human, TransferArgs,
         ("Hand the conversation to a human agent, only when the request is outside what "
          "these tools and the policy allow.")),
    ]
    return [
        StructuredTool.from_function(func=method, name=method.__name__, description=description,
                                     args_schema=schema, handle_tool_error=False,
                                     handle_validation_error=False)
        for method, schema, description in specs
    ]
