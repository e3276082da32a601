"""Choosing customers of the fleet by name, as every command that takes a customer does."""

from __future__ import annotations

from dataplane.customer import Customer


class UnknownCustomer(Exception):
    """A name that is not a customer of the fleet: `no customer 'x'; known: a, b`."""

    def __init__(self, name: str, customers: list[Customer]):
        known = ", ".join(c.name for c in customers) or "none"
        super().__init__(f"no customer {name!r}; known: {known}")


def customer_named(customers: list[Customer], name: str) -> Customer:
    """The customer called `name` (a malformed name is simply not one of them)."""
    for customer in customers:
        if customer.name == name:
            return customer
    raise UnknownCustomer(name, customers)
