"""`python -m dataplane list`: every customer at a glance, and data-plane CIDRs that overlap.

A control plane that ever peers with several data planes needs their ranges disjoint, so any
two customers whose `network.cidr` overlap are reported. Read from the files only: no AWS calls.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from dataclasses import dataclass

from dataplane.config.customer import Customer


@dataclass(frozen=True)
class Overlap:
    """Two customers whose data-plane CIDRs overlap."""

    customers: tuple[str, str]
    cidrs: tuple[str, str]

    def __str__(self) -> str:
        (a, b), (x, y) = self.customers, self.cidrs
        return f"WARN  {a} and {b}: data-plane CIDRs {x} and {y} overlap"


def overlaps(customers: list[Customer]) -> list[Overlap]:
    """Every pair of customers whose data-plane networks overlap, in name order."""
    networked = [c for c in customers if c.network]
    return [Overlap((a.name, b.name), (a.network.cidr, b.network.cidr))
            for a, b in itertools.combinations(networked, 2)
            if ipaddress.IPv4Network(a.network.cidr).overlaps(ipaddress.IPv4Network(b.network.cidr))]


def _peering(c: Customer) -> str:
    p = c.peering
    return f"{p.vpc_id} ({p.account_id}, {c.peer_region}): {', '.join(p.cidrs)}" if p else "-"


def table(customers: list[Customer]) -> str:
    """One line per customer, then one WARN line per overlapping pair."""
    header = ("NAME", "ACCOUNT", "REGION", "NETWORK", "PEERING")
    lines = [header] + [(c.name, c.account_id, c.region + (" (opt-in)" if c.opt_in_region else ""),
                         c.network.cidr if c.network else "-", _peering(c)) for c in customers]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    text = ["  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]]) for line in lines]
    return "\n".join(text + [str(o) for o in overlaps(customers)])


def as_json(customers: list[Customer]) -> str:
    return json.dumps({
        "customers": [{
            "name": c.name, "account_id": c.account_id, "region": c.region, "opt_in_region": c.opt_in_region,
            "network_cidr": c.network.cidr if c.network else None,
            "peering": c.peering and {"vpc_id": c.peering.vpc_id, "account_id": c.peering.account_id,
                                      "region": c.peer_region, "cidrs": list(c.peering.cidrs)},
        } for c in customers],
        "overlaps": [{"customers": list(o.customers), "cidrs": list(o.cidrs)} for o in overlaps(customers)],
    }, indent=2)
