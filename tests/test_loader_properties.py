"""Property tests of the loader: any file either loads or is refused with file and field, never crashes.

CIDR rules are checked against an integer-range oracle; names and ExternalIds against a plain
character-by-character oracle, with traps (non-ASCII letters `\\w` accepts, trailing newlines,
control characters, very long strings, TOML numbers where strings are expected).
"""

from __future__ import annotations

import ipaddress
import string
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplane.config.customer import Customer, CustomerRules, load_customer
from dataplane.config.errors import ConfigError
from tests.conftest import SUMMARY

CONTROL_PLANE = "406882777402"
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
RFC1918 = [(0x0A000000, 8), (0xAC100000, 12), (0xC0A80000, 16)]
NOT_IN_A_VPC = [(0x00000000, 8), (0x7F000000, 8), (0xA9FE0000, 16), (0xE0000000, 3)]
NAME_CHARS = set(string.ascii_lowercase + string.digits + "-")
EXTERNAL_ID_CHARS = set(string.ascii_letters + string.digits + "+=,.@:/_-")


def toml_string(value: str) -> str:
    """A TOML basic string for any text: quotes, backslashes and control characters escaped."""
    escaped = "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else "\\" + c if c in '"\\' else c
                      for c in value)
    return f'"{escaped}"'


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def toml_document(data: dict) -> str:
    """TOML for a dict of scalars, arrays and one level of tables."""
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for table, body in data.items():
        if isinstance(body, dict):
            lines.append(f"[{toml_string(table)}]")
            lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


TALLY = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_tally(request):
    """Say in the run's summary how many files the properties tried and how many the loader refused."""
    yield
    request.config.stash.setdefault(SUMMARY, []).append(
        f"loader properties: {TALLY['tried']} files tried, {TALLY['refused']} refused, "
        f"{TALLY['tried'] - TALLY['refused']} loaded")


def load(text: str, name: str = "acme", rules: CustomerRules = CustomerRules()) -> Customer | list:
    """The loaded customer, or the refusal's problems; anything else propagates and fails the test."""
    TALLY["tried"] += 1
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_customer(path, CONTROL_PLANE, rules=rules)
        except ConfigError as e:
            TALLY["refused"] += 1
            assert e.problems and all(p.file == str(path) and p.field and p.message for p in e.problems)
            return e.problems


def fields(problems: list) -> set[str]:
    return {p.field for p in problems}


BASE = {"account_id": "123456789012", "region": "us-east-1", "external_id": "astro-3f9c2b7e"}
scalars = st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.floats(allow_nan=False),
                    st.sampled_from(["123456789012", "us-east-1", "10.0.0.0/16", "vpc-0a1b2c3d", "rtb-0a1b2c3d",
                                     "arn:aws:iam::111122223333:role/x", "astro-1"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3))
keys = st.sampled_from(["account_id", "region", "external_id", "cidr", "vpc_id", "cidrs", "route_table_ids",
                        "accepter_role_arn", "colour"]) | st.text(min_size=1, max_size=10)
tables = st.dictionaries(keys, values, max_size=6)
documents = st.dictionaries(st.sampled_from(["network", "peering", "extra"]), tables, max_size=2).flatmap(
    lambda t: st.dictionaries(keys, values, max_size=6).map(lambda top: {**BASE, **top, **t}))


@PROPERTY
@given(documents)
def test_any_structured_file_loads_or_is_refused_with_file_and_field(data):
    load(toml_document(data))


@PROPERTY
@given(st.text(max_size=300))
def test_any_text_loads_or_is_refused_with_file_and_field(text):
    load(text)


def inside(address: int, prefix: int, blocks: list[tuple[int, int]]) -> bool:
    return any(address >> (32 - p) == base >> (32 - p) and prefix >= p for base, p in blocks)


def oracle_data_plane_cidr(address: int, prefix: int, smallest: int) -> bool:
    host_bits_clear = address & ((1 << (32 - prefix)) - 1) == 0
    return host_bits_clear and inside(address, prefix, RFC1918) and 16 <= prefix <= smallest


def oracle_peer_cidr(address: int, prefix: int) -> bool:
    """A possible VPC CIDR (host bits are clear in the generated ones)."""
    return 16 <= prefix <= 28 and not inside(address, prefix, NOT_IN_A_VPC)


def within(blocks: list[tuple[int, int]]) -> st.SearchStrategy[int]:
    return st.sampled_from(blocks).flatmap(lambda b: st.integers(b[0], b[0] + 2 ** (32 - b[1]) - 1))


addresses = st.one_of(st.integers(0, 2**32 - 1), within(RFC1918), within(NOT_IN_A_VPC))
aligned = st.tuples(addresses, st.integers(0, 32)).map(lambda ap: (ap[0] & ~((1 << (32 - ap[1])) - 1), ap[1]))


@pytest.mark.parametrize("smallest", [19, 20])
@PROPERTY
@given(address_prefix=st.one_of(st.tuples(addresses, st.integers(0, 32)), aligned))
def test_network_cidr_matches_the_integer_oracle(smallest, address_prefix):
    address, prefix = address_prefix
    cidr = f"{ipaddress.IPv4Address(address)}/{prefix}"
    result = load(toml_document({**BASE, "network": {"cidr": cidr}}), rules=CustomerRules(min_network_prefix=smallest))
    expected = oracle_data_plane_cidr(address, prefix, smallest)
    assert isinstance(result, Customer) == expected, (cidr, result)
    if not expected:
        assert fields(result) == {"network.cidr"}


data_plane_cidrs = st.tuples(st.sampled_from(RFC1918), st.integers(16, 19), st.integers(0, 2**24 - 1)).map(
    lambda b: ((b[0][0] | (b[2] % 2 ** (32 - b[0][1]))) & ~((1 << (32 - b[1])) - 1), b[1]))


@PROPERTY
@given(st.one_of(aligned, aligned.filter(lambda ap: 16 <= ap[1] <= 28)), data_plane_cidrs)
def test_peer_cidr_matches_the_integer_oracle(peer, own):
    """A peer CIDR loads when it is a possible VPC CIDR that does not overlap the data plane's."""
    (peer_address, peer_prefix), (own_address, own_prefix) = peer, own
    peer_end, own_end = peer_address + 2 ** (32 - peer_prefix) - 1, own_address + 2 ** (32 - own_prefix) - 1
    overlaps = peer_address <= own_end and own_address <= peer_end
    data = {**BASE, "network": {"cidr": f"{ipaddress.IPv4Address(own_address)}/{own_prefix}"},
            "peering": {"vpc_id": "vpc-0a1b2c3d", "account_id": "123456789012",
                        "cidrs": [f"{ipaddress.IPv4Address(peer_address)}/{peer_prefix}"],
                        "route_table_ids": ["rtb-0a1b2c3d"]}}
    result = load(toml_document(data))
    expected = oracle_peer_cidr(peer_address, peer_prefix) and not overlaps
    assert isinstance(result, Customer) == expected, result
    if not expected:
        assert fields(result) == {"peering.cidrs[0]"}


traps = st.sampled_from(["é", "ß", "٣", "ｱ", "\n", "\r", "\t", "\x00", "\x1f", "\x7f", " ", "$", "{", "}", "%",
                         "_", ".", "A", "Z", "a", "z", "0", "9", "-", "+", "=", ",", "@", ":", "/", "\u200b"])
trap_text = st.lists(st.one_of(traps, st.characters(codec="utf-8", exclude_characters="\x00/")), max_size=60).map(
    "".join)


almost_names = st.tuples(st.sampled_from("abcxyz"), trap_text, st.sampled_from("az09")).map("".join)
almost_ids = st.tuples(st.sampled_from("aZ0+"), trap_text, st.sampled_from("z9_-")).map("".join)


def oracle_name(name: str) -> bool:
    return (2 <= len(name) <= 40 and set(name) <= NAME_CHARS and name[0] in string.ascii_lowercase
            and not name.endswith("-"))


@PROPERTY
@given(st.one_of(trap_text, almost_names, st.from_regex(r"[a-z][a-z0-9-]{0,45}", fullmatch=True),
                 st.from_regex(r"[a-z][a-z0-9-]{0,38}[a-z0-9]\n", fullmatch=True)))
def test_customer_names_match_the_character_oracle(name):
    if not name or "/" in name or "\x00" in name or name in (".", "..") or len(name.encode()) > 200:
        return  # not a possible file name
    result = load(toml_document(BASE), name=name)
    assert isinstance(result, Customer) == oracle_name(name), (name, result)
    if not oracle_name(name):
        assert fields(result) == {"(file name)"}


def oracle_external_id(value: str) -> bool:
    return 2 <= len(value) <= 1224 and set(value) <= EXTERNAL_ID_CHARS


@PROPERTY
@given(st.one_of(trap_text, almost_ids, st.from_regex(r"[A-Za-z0-9+=,.@:/_-]{2,40}\n?", fullmatch=True),
                 st.integers(1200, 1300).map(lambda n: "x" * n)))
def test_external_ids_match_the_character_oracle(external_id):
    result = load(toml_document({**BASE, "external_id": external_id}))
    assert isinstance(result, Customer) == oracle_external_id(external_id), (external_id, result)
    if not oracle_external_id(external_id):
        assert fields(result) == {"external_id"}


@PROPERTY
@given(st.lists(st.one_of(almost_ids, st.sampled_from(["astro-a1", "astro-b2", "x" * 40]),
                          st.from_regex(r"[A-Za-z0-9+=,.@:/_-]{2,40}", fullmatch=True)), max_size=24))
def test_external_id_lists_match_the_oracle(ids):
    """1 to 20 distinct ids, each passing the character oracle (short ones: the trust stays within its quota)."""
    result = load(toml_document({**BASE, "external_id": ids}))
    expected = 1 <= len(ids) <= 20 and len(set(ids)) == len(ids) and all(map(oracle_external_id, ids))
    assert isinstance(result, Customer) == expected, (ids, result)
    if expected:
        assert result.external_ids == tuple(ids)
    else:
        assert fields(result) <= {"external_id"} | {f"external_id[{i}]" for i in range(len(ids))}


@PROPERTY
@given(st.sampled_from(["account_id", "external_id", "region"]), st.integers())
def test_toml_numbers_where_strings_are_expected_are_refused(field, number):
    result = load(toml_document({**BASE, field: number}))
    assert [(p.field, p.message.split(",")[0]) for p in result] == [(field, "must be a quoted string")]


def test_template_interpolation_is_refused_in_names_and_external_ids():
    for payload in ("${aws_iam_role.x.arn}", "%{if true}x%{endif}", "a${b}"):
        assert fields(load(toml_document({**BASE, "external_id": payload}))) == {"external_id"}
        assert fields(load(toml_document(BASE), name=payload.replace("/", ""))) == {"(file name)"}
