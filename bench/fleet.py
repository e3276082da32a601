"""Generated customer files for tests and the benchmark: a deterministic fleet of any size.

Every customer is valid and distinct (its own name and account). `kinds` picks the shapes,
cycled through in order::

    write_fleet(tmp_path, 20)                      # every shape, mixed
    write_fleet(tmp_path, 1000, kinds=FULL_KINDS)  # network and peering in every customer
"""

from __future__ import annotations

from pathlib import Path

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ca-central-1")
KINDS = ("role-only", "network", "cross-account-peering", "same-account-peering", "cross-region-peering")
"""role only; a VPC; peering accepted through a role in another account; auto-accepted
peering in the same account and region; peering in the same account, another region."""
FULL_KINDS = ("cross-account-peering", "same-account-peering", "cross-region-peering")


def customer_toml(index: int, kind: str) -> str:
    """The customer file of fleet member `index` with the given shape."""
    account = f"{100_000_000_000 + index:012d}"
    region = REGIONS[index % len(REGIONS)]
    text = f'account_id = "{account}"\nregion = "{region}"\nexternal_id = "astro-{index:08x}"\n'
    if kind == "role-only":
        return text
    text += f'\n[network]\ncidr = "10.{index % 256}.{32 * (index % 8)}.0/19"\n'
    if kind == "network":
        return text
    peer_account = f"{200_000_000_000 + index:012d}" if kind == "cross-account-peering" else account
    peer_region = REGIONS[(index + 1) % len(REGIONS)] if kind == "cross-region-peering" else region
    text += f'\n[peering]\nvpc_id = "vpc-{index:017x}"\naccount_id = "{peer_account}"\n'
    if kind != "same-account-peering":  # the same-account peer takes the default: the customer's region
        text += f'region = "{peer_region}"\n'
    text += (f'cidrs = ["172.16.{index % 256}.0/24", "192.168.{index % 256}.0/24"]\n'
             f'route_table_ids = ["rtb-{index:08x}", "rtb-{index:017x}"]\n')
    if kind == "cross-account-peering":
        text += f'accepter_role_arn = "arn:aws:iam::{peer_account}:role/peering-accepter"\n'
    return text


def write_fleet(directory: Path, count: int, kinds: tuple[str, ...] = KINDS) -> None:
    """Write `count` customer files, `customer-0000.toml` onwards, into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        text = customer_toml(index, kinds[index % len(kinds)])
        (directory / f"customer-{index:04d}.toml").write_text(text, encoding="utf-8")
