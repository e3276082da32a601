"""The customer file contract: what loads, and what is refused with file and field named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import botocore
import pytest

from dataplane.config import customer as customer_module
from dataplane.config.customer import (
    AWS_REGIONS,
    MAX_FILE_BYTES,
    OPT_IN_REGIONS,
    SUPPORTED_REGIONS,
    CustomerFile,
    CustomerRules,
    TamperAlarm,
    load_customer,
    load_customers,
)
from dataplane.config.errors import ConfigError, shown
from dataplane.policy import (
    INLINE_POLICIES_QUOTA,
    TRUST_POLICY_QUOTA,
    DelegationGuard,
    iam_size,
    inline_policies_problems,
    permissions_policy,
    policy_json,
    trust_policy,
)
from dataplane.project import PROJECT_ROOT

CONTROL_PLANE = "406882777402"
BASE = 'account_id = "123456789012"\nregion = "us-east-1"\nexternal_id = "astro-3f9c2b7e"\n'
NETWORK = '[network]\ncidr = "172.20.0.0/19"\n'
PEERING = ('[peering]\nvpc_id = "vpc-0a1b2c3d4e5f60718"\naccount_id = "111122223333"\ncidrs = ["10.10.0.0/16"]\n'
           'route_table_ids = ["rtb-0a1b2c3d"]\naccepter_role_arn = "arn:aws:iam::111122223333:role/peering-accepter"\n')


PEER_IN_CONTROL_PLANE = PEERING.replace("111122223333", CONTROL_PLANE)
MANY_CIDRS = ", ".join(f'"10.0.{i}.0/24"' for i in range(51))
MANY_ROUTE_TABLES = ", ".join(f'"rtb-{i:08x}"' for i in range(51))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str, name: str = "acme", rules: CustomerRules = CustomerRules()) -> list[str]:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as caught:
        load_customer(path, CONTROL_PLANE, rules=rules)
    return [str(p) for p in caught.value.problems]


def assert_refused(tmp_path: Path, text: str, field: str, words: str, name: str = "acme",
                   rules: CustomerRules = CustomerRules()) -> None:
    problems = refusal(tmp_path, text, name, rules)
    expected = f"{tmp_path / name}.toml: {field}: "
    matching = [p for p in problems if p.startswith(expected)]
    assert matching, f"no problem for {field}: {problems}"
    assert any(words in p for p in matching), matching


def test_full_file_loads_with_defaults(tmp_path):
    customer = load_customer(write(tmp_path, "acme-2", BASE + NETWORK + PEERING), CONTROL_PLANE)
    assert customer.name == "acme-2"
    assert customer.network.cidr == "172.20.0.0/19"
    assert customer.peering.cidrs == ("10.10.0.0/16",)
    assert customer.peer_region == "us-east-1"
    assert customer.peering_crosses_boundary
    assert not customer.opt_in_region


def test_role_only_file_loads(tmp_path):
    customer = load_customer(write(tmp_path, "acme", BASE), CONTROL_PLANE)
    assert (customer.account_id, customer.region, customer.external_id) == ("123456789012", "us-east-1", "astro-3f9c2b7e")
    assert customer.network is None and customer.peering is None


def test_customer_is_immutable(tmp_path):
    customer = load_customer(write(tmp_path, "acme", BASE), CONTROL_PLANE)
    with pytest.raises(Exception):
        customer.account_id = "000000000000"


def test_opt_in_region_is_accepted_and_flagged(tmp_path):
    customer = load_customer(write(tmp_path, "acme", BASE.replace("us-east-1", "me-south-1")), CONTROL_PLANE)
    assert customer.opt_in_region


def test_same_account_peering_needs_no_accepter_role(tmp_path):
    text = BASE + NETWORK + PEERING.replace('account_id = "111122223333"', 'account_id = "123456789012"').replace(
        'accepter_role_arn = "arn:aws:iam::111122223333:role/peering-accepter"\n', "")
    customer = load_customer(write(tmp_path, "acme", text), CONTROL_PLANE)
    assert not customer.peering_crosses_boundary


@pytest.mark.parametrize("name", ["ab", "acme", "a1-b2", "a" * 40])
def test_valid_names(tmp_path, name):
    assert load_customer(write(tmp_path, name, BASE), CONTROL_PLANE).name == name


@pytest.mark.parametrize("name", ["a", "a" * 41, "Acme", "1acme", "acme-", "ac_me", "acmé", "ac.me"])
def test_invalid_names(tmp_path, name):
    assert_refused(tmp_path, BASE, "(file name)", "2-40 characters", name=name)


@pytest.mark.parametrize("text, field, words", [
    (BASE + "colour = 'blue'\n", "colour", "unknown key"),
    (BASE + NETWORK + "size = 19\n", "network.size", "unknown key"),
    (BASE + NETWORK + PEERING + "extra = 1\n", "peering.extra", "unknown key"),
    (BASE.replace('"123456789012"', "123456789012"), "account_id", "must be a quoted string"),
    (BASE.replace('"123456789012"', '"12345678901"'), "account_id", "12-digit"),
    (BASE.replace('"123456789012"', '"406882777402"'), "account_id", "control-plane account"),
    (BASE.replace('region = "us-east-1"\n', ""), "region", "required"),
    (BASE.replace("us-east-1", "us-east-7"), "region", "not a supported Astro region"),
    (BASE.replace("us-east-1", "mars"), "region", "not an AWS region"),
    (BASE.replace("astro-3f9c2b7e", "a"), "external_id", "2-1224 characters"),
    (BASE.replace("astro-3f9c2b7e", "astro 3f9c"), "external_id", "2-1224 characters"),
    (BASE.replace("astro-3f9c2b7e", "x" * 1225), "external_id", "2-1224 characters"),
    (BASE.replace("astro-3f9c2b7e", "${var.x}"), "external_id", "2-1224 characters"),
    (BASE + '[network]\ncidr = "8.8.0.0/19"\n', "network.cidr", "RFC1918"),
    (BASE + '[network]\ncidr = "10.0.0.0/20"\n', "network.cidr", "smaller than a /19"),
    (BASE + '[network]\ncidr = "10.0.0.0/15"\n', "network.cidr", "larger than a /16"),
    (BASE + '[network]\ncidr = "10.0.0.1/19"\n', "network.cidr", "host bits set"),
    (BASE + '[network]\ncidr = "10.0.0.0"\n', "network.cidr", "no prefix length"),
    (BASE + '[network]\ncidr = "10.0.0.0/33"\n', "network.cidr", "invalid prefix length"),
    (BASE + '[network]\ncidr = "not-a-cidr/19"\n', "network.cidr", "not an IPv4 CIDR"),
    (BASE + PEERING, "peering", "requires [network]"),
    (BASE + NETWORK + PEERING.replace("vpc-0a1b2c3d4e5f60718", "vpc-0a1b2c3d4e"), "peering.vpc_id", "8 or 17 hex"),
    (BASE + NETWORK + PEERING.replace("vpc-0a1b2c3d4e5f60718", "vpc-0A1B2C3D"), "peering.vpc_id", "8 or 17 hex"),
    (BASE + NETWORK + PEERING.replace("rtb-0a1b2c3d", "rtb-0a1b2c3"), "peering.route_table_ids[0]", "8 or 17 hex"),
    (BASE + NETWORK + PEERING.replace('["rtb-0a1b2c3d"]', "[]"), "peering.route_table_ids", "at least 1"),
    (BASE + NETWORK + PEERING.replace('["10.10.0.0/16"]', "[]"), "peering.cidrs", "at least 1"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "172.20.16.0/20"), "peering.cidrs[0]", "overlaps network.cidr"),
    (BASE + NETWORK + PEERING.replace('["10.10.0.0/16"]', '["10.10.0.0/16", "10.10.0.0/16"]'), "peering", "twice"),
    (BASE + NETWORK + PEERING.replace('["10.10.0.0/16"]', '["10.10.0.0/16", "10.10.1.0/24"]'), "peering",
     "overlap"),
    (BASE + NETWORK + PEERING.replace("role/peering-accepter", "user/peering-accepter"),
     "peering.accepter_role_arn", "IAM role ARN"),
    (BASE + NETWORK + PEERING.replace("iam::111122223333:role", "iam::999999999999:role"), "peering",
     "not the peer account"),
    (BASE + NETWORK + PEERING.replace('accepter_role_arn = "arn:aws:iam::111122223333:role/peering-accepter"\n', ""),
     "peering.accepter_role_arn", "required: the peer account 111122223333 differs"),
    (BASE + NETWORK + PEERING.replace('account_id = "111122223333"', "account_id = 111122223333"),
     "peering.account_id", "must be a quoted string"),
    (BASE + NETWORK + PEERING.replace('cidrs = ["10.10.0.0/16"]', 'cidrs = "10.10.0.0/16"'), "peering.cidrs",
     "must be an array"),
    ("account_id = \n", "(file)", "not valid TOML"),
    (BASE + NETWORK + PEER_IN_CONTROL_PLANE, "peering.account_id", "is the control-plane account"),
    (BASE + NETWORK + PEERING + 'region = "xx-fake-9"\n', "peering.region", "not a region of the commercial AWS"),
    (BASE + NETWORK + PEERING + 'region = "cn-north-1"\n', "peering.region", "activates commercial regions only"),
    (BASE + NETWORK + PEERING + 'region = "us-gov-west-1"\n', "peering.region", "activates commercial regions only"),
    (BASE + NETWORK + PEERING + "region = 1\n", "peering.region", "must be a quoted string"),
    (BASE + NETWORK + PEERING.replace("arn:aws:", "arn:aws-cn:"), "peering.accepter_role_arn",
     "'aws-cn' partition; this tool activates commercial AWS regions only"),
    (BASE + NETWORK + PEERING.replace("arn:aws:", "arn:aws-us-gov:"), "peering.accepter_role_arn",
     "'aws-us-gov' partition; this tool activates commercial AWS regions only"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "0.0.0.0/1"), "peering.cidrs[0]", "larger than a /16"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "169.254.169.254/32"), "peering.cidrs[0]",
     "smaller than a /28"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "10.10.0.0/29"), "peering.cidrs[0]", "smaller than a /28"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "0.0.0.0/16"), "peering.cidrs[0]", "in 0.0.0.0/8"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "127.0.0.0/16"), "peering.cidrs[0]", "(loopback)"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "169.254.0.0/16"), "peering.cidrs[0]", "(link-local)"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "224.0.0.0/16"), "peering.cidrs[0]", "(multicast"),
    (BASE + NETWORK + PEERING.replace("10.10.0.0/16", "255.255.255.0/24"), "peering.cidrs[0]", "in 224.0.0.0/3"),
    (BASE + NETWORK + PEERING.replace('["10.10.0.0/16"]', f"[{MANY_CIDRS}]"), "peering.cidrs", "at most 50"),
    (BASE + NETWORK + PEERING.replace('["rtb-0a1b2c3d"]', f"[{MANY_ROUTE_TABLES}]"), "peering.route_table_ids",
     "at most 50"),
    ("x = " + "[" * 500 + "]" * 500 + "\n", "(file)", "nested too deeply"),
    ("x = " + "{a = " * 500 + "1" + "}" * 500 + "\n", "(file)", "nested too deeply"),
    (BASE + "# " + "x" * MAX_FILE_BYTES + "\n", "(file)", f"bytes; a customer file is at most {MAX_FILE_BYTES}"),
])
def test_refusals_name_file_and_field(tmp_path, text, field, words):
    assert_refused(tmp_path, text, field, words)


def test_an_invalid_item_is_one_problem(tmp_path):
    """Not also "must list at least 1 item(s)": pydantic counts only the valid items."""
    text = BASE + NETWORK + PEERING.replace("10.10.0.0/16", "0.0.0.0/1").replace("rtb-0a1b2c3d", "rtb-0a")
    assert [p.split(": ")[1] for p in refusal(tmp_path, text)] == ["peering.cidrs[0]", "peering.route_table_ids[0]"]


@pytest.mark.parametrize("peering", [
    PEERING + 'region = "ap-south-2"\n',  # a commercial region the data plane itself does not support
    PEERING.replace('["10.10.0.0/16"]', f"[{MANY_CIDRS.rsplit(', ', 1)[0]}]").replace(
        '["rtb-0a1b2c3d"]', f"[{MANY_ROUTE_TABLES.rsplit(', ', 1)[0]}]"),  # 50 of each
    PEERING.replace("10.10.0.0/16", "100.64.0.0/28"),  # the smallest VPC, outside RFC1918
])
def test_peering_limits_accept(tmp_path, peering):
    assert load_customer(write(tmp_path, "acme", BASE + NETWORK + peering), CONTROL_PLANE).peering


def test_a_file_of_the_maximum_size_loads(tmp_path):
    text = BASE + "#" * (MAX_FILE_BYTES - len(BASE) - 1) + "\n"
    assert len(text.encode()) == MAX_FILE_BYTES
    assert load_customer(write(tmp_path, "acme", text), CONTROL_PLANE).name == "acme"


def test_recursion_in_validation_is_a_problem_too(tmp_path, monkeypatch):
    def too_deep(raw, **options):
        raise RecursionError
    monkeypatch.setattr(CustomerFile, "model_validate", too_deep)
    assert_refused(tmp_path, BASE, "(file)", "nested too deeply")


def test_aws_regions_are_botocore_s_aws_partition():
    """A botocore update that adds a region shows up here: copy the new list into AWS_REGIONS."""
    partitions = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    [aws] = [p for p in partitions["partitions"] if p["id"] == "aws"]
    assert AWS_REGIONS == set(aws["regions"]) - {"aws-global"}
    assert SUPPORTED_REGIONS <= AWS_REGIONS


def test_the_configuration_does_not_import_the_aws_sdk():
    imported = subprocess.run([sys.executable, "-c", "import sys, dataplane.config.settings; print(sorted(sys.modules))"],
                              cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout
    assert "botocore" not in imported and "boto3" not in imported


def test_every_problem_in_a_file_is_reported(tmp_path):
    problems = refusal(tmp_path, 'account_id = 1\nregion = "mars"\nexternal_id = "a"\n', name="Bad")
    fields = sorted(p.split(": ")[1] for p in problems)
    assert fields == ["(file name)", "account_id", "external_id", "region"]


def test_fleet_loads_sorted(tmp_path):
    write(tmp_path, "zeta", BASE)
    write(tmp_path, "alpha", BASE.replace("123456789012", "223456789012").replace("astro-3f9c2b7e", "astro-a1"))
    (tmp_path / "README.md").write_text("not a customer")
    assert [c.name for c in load_customers(tmp_path, CONTROL_PLANE)] == ["alpha", "zeta"]


def test_fleet_is_all_or_nothing_and_lists_every_file(tmp_path):
    write(tmp_path, "good", BASE)
    write(tmp_path, "bad-one", BASE.replace('"123456789012"', "1"))
    write(tmp_path, "bad-two", BASE.replace("us-east-1", "us-east-9"))
    with pytest.raises(ConfigError) as caught:
        load_customers(tmp_path, CONTROL_PLANE)
    assert [(Path(p.file).name, p.field) for p in caught.value.problems] == [
        ("bad-one.toml", "account_id"), ("bad-two.toml", "region")]


def test_two_customers_in_one_account_are_refused(tmp_path):
    write(tmp_path, "first", BASE)
    write(tmp_path, "second", BASE.replace("astro-3f9c2b7e", "astro-second"))
    with pytest.raises(ConfigError) as caught:
        load_customers(tmp_path, CONTROL_PLANE)
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.field) == ("second.toml", "account_id")
    assert problem.message.startswith("123456789012 is also the account of ") and "first.toml" in problem.message
    assert "activated" not in problem.message  # a file names an account; whether it is activated, only AWS says


def test_an_external_id_two_customers_require_is_refused_with_both_files(tmp_path):
    """The ExternalId is what keeps one customer's control-plane cluster out of another customer's role."""
    write(tmp_path, "acme", BASE)
    write(tmp_path, "globex", BASE.replace("123456789012", "210987654321").replace(
        '"astro-3f9c2b7e"', '["astro-8d41a6c0", "astro-3f9c2b7e"]'))
    write(tmp_path, "hooli", BASE.replace("123456789012", "456789012345").replace(
        '"astro-3f9c2b7e"', '["astro-8d41a6c0", "astro-3f9c2b7e", "astro-71c4e9a2"]'))
    write(tmp_path, "initech", BASE.replace("123456789012", "567890123456").replace("astro-3f9c2b7e", "Astro-3F9C2B7E"))
    with pytest.raises(ConfigError) as caught:
        load_customers(tmp_path, CONTROL_PLANE, display_root=tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        "globex.toml: external_id: also required by acme.toml",
        "hooli.toml: external_id: also required by acme.toml",
        "hooli.toml: external_id: also required by globex.toml"]
    (tmp_path / "hooli.toml").unlink()
    (tmp_path / "globex.toml").unlink()
    assert [c.name for c in load_customers(tmp_path, CONTROL_PLANE)] == ["acme", "initech"], "ids are case-sensitive"


def test_missing_directory_is_a_problem(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_customers(tmp_path / "nope", CONTROL_PLANE)


def with_external_id(value: str) -> str:
    return BASE.replace('"astro-3f9c2b7e"', value)


def test_several_external_ids_load_in_the_file_s_order(tmp_path):
    customer = load_customer(write(tmp_path, "acme", with_external_id('["astro-b2", "astro-a1"]')), CONTROL_PLANE)
    assert customer.external_id == customer.external_ids == ("astro-b2", "astro-a1")
    one = load_customer(write(tmp_path, "acme", BASE), CONTROL_PLANE)
    assert (one.external_id, one.external_ids) == ("astro-3f9c2b7e", ("astro-3f9c2b7e",))


def test_twenty_external_ids_load(tmp_path):
    ids = ", ".join(f'"astro-{i:02d}"' for i in range(20))
    assert len(load_customer(write(tmp_path, "acme", with_external_id(f"[{ids}]")), CONTROL_PLANE).external_ids) == 20


CHARACTERS = "2-1224 characters of A-Z a-z 0-9 + = , . @ : / _ -"


@pytest.mark.parametrize("value, field, message", [
    ("[]", "external_id", "must list at least 1 item(s)"),
    ('["astro-a1", "astro-b2", "astro-a1"]', "external_id", "lists 'astro-a1' twice"),
    ("[" + ", ".join(f'"astro-{i:02d}"' for i in range(21)) + "]", "external_id", "must list at most 20 item(s)"),
    ('["astro-a1", "astro b2"]', "external_id[1]", f"'astro b2' is not {CHARACTERS}"),
    ('["astro-a1", 7]', "external_id[1]", "must be a quoted string, not integer 7"),
    ('["astro-a1", "*"]', "external_id[1]", f"'*' is not {CHARACTERS}"),
    ("7", "external_id", "must be a quoted string, not integer 7"),
])
def test_a_bad_external_id_list_is_one_problem(tmp_path, value, field, message):
    assert refusal(tmp_path, with_external_id(value)) == [f"{tmp_path / 'acme'}.toml: {field}: {message}"]


ROOT = f"arn:aws:iam::{CONTROL_PLANE}:root"
LONGEST_ID = "x" * 1224


def compact_size(document: dict) -> int:
    """The policy's length without any whitespace outside strings, counted independently of `iam_size`."""
    return len(json.dumps(document, separators=(",", ":")))


def test_iam_size_counts_the_rendered_json_without_whitespace_outside_strings():
    assert iam_size('{"Sid": "a b", "x": [1, 2]}') == len('{"Sid":"a b","x":[1,2]}')
    assert iam_size('{"a": "q\\" b", \n\t"c": "d"}') == len('{"a":"q\\" b","c":"d"}')
    document = trust_policy(ROOT, [LONGEST_ID, "y2"])
    assert " " in policy_json(document) and iam_size(policy_json(document)) == compact_size(document)


@pytest.mark.parametrize("second, loads", [(606, True), (607, False)])
def test_a_trust_policy_over_2048_characters_is_refused_with_its_size(tmp_path, second, loads):
    ids = [LONGEST_ID, "y" * second]
    assert compact_size(trust_policy(ROOT, ids)) == (TRUST_POLICY_QUOTA if loads else 2049)
    text = with_external_id(json.dumps(ids))
    if loads:
        assert load_customer(write(tmp_path, "acme", text), CONTROL_PLANE).external_ids == tuple(ids)
    else:
        assert refusal(tmp_path, text) == [
            f"{tmp_path / 'acme'}.toml: external_id: the trust policy would be 2,049 characters (whitespace "
            "excluded), over IAM's default quota of 2,048"]


def test_the_trust_policy_is_sized_with_the_configured_principal(tmp_path):
    """The same ExternalIds fit with the account root but not with a longer control-plane role ARN."""
    ids = [LONGEST_ID, "y" * 606]
    role = f"arn:aws:iam::{CONTROL_PLANE}:role/control-plane"
    size = compact_size(trust_policy(role, ids))
    problems = refusal(tmp_path, with_external_id(json.dumps(ids)), rules=CustomerRules(control_plane_role_arn=role))
    assert problems == [f"{tmp_path / 'acme'}.toml: external_id: the trust policy would be {size:,} characters "
                        "(whitespace excluded), over IAM's default quota of 2,048"]


def filler(size: int) -> dict:
    """An inline policy of exactly `size` characters, whitespace excluded."""
    document = {"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow", "Action": "s3:GetObject",
                                                        "Resource": "*"}]}
    document["Statement"][0]["Sid"] = "F" * (size - compact_size(document))
    assert compact_size(document) == size
    return document


@pytest.mark.parametrize("total, loads", [(INLINE_POLICIES_QUOTA, True), (INLINE_POLICIES_QUOTA + 1, False)])
def test_inline_policies_over_10240_characters_in_total_are_refused(tmp_path, monkeypatch, total, loads):
    monkeypatch.setattr(customer_module, "permissions_policy", lambda guard=None: filler(total))
    path = write(tmp_path, "acme", BASE)
    if loads:
        assert load_customer(path, CONTROL_PLANE).name == "acme"
    else:
        assert refusal(tmp_path, BASE) == [
            f"{path}: (inline policies): the role's inline policies would be 10,241 characters in total (whitespace "
            "excluded), over IAM's limit of 10,240"]


def test_the_inline_policy_checked_is_the_one_with_the_customer_s_escalation_guard(tmp_path, monkeypatch):
    guards = []
    monkeypatch.setattr(customer_module, "permissions_policy", lambda guard=None: guards.append(guard) or filler(200))
    rules = CustomerRules(role_name="activation", delegation_boundary="boundaries/DataPlane")
    load_customer(write(tmp_path, "acme", BASE), CONTROL_PLANE, rules=rules)
    assert guards == [DelegationGuard("arn:aws:iam::123456789012:policy/boundaries/DataPlane",
                                      "arn:aws:iam::123456789012:role/activation")]


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("Principal"), "the trust policy's AstroControlPlane has no Principal, which IAM requires"),
    (lambda s: s.update(Resource="*"),
     "the trust policy's AstroControlPlane has Resource, which IAM refuses in a trust policy"),
    (lambda s: s.update(NotResource="*"),
     "the trust policy's AstroControlPlane has NotResource, which IAM refuses in a trust policy"),
])
def test_trust_shapes_iam_refuses_but_moto_accepts_are_refused(tmp_path, monkeypatch, edit, message):
    def misshapen(principal, external_id):
        document = trust_policy(principal, external_id)
        edit(document["Statement"][0])
        return document
    monkeypatch.setattr(customer_module, "trust_policy", misshapen)
    assert refusal(tmp_path, BASE) == [f"{tmp_path / 'acme'}.toml: external_id: {message}"]


def test_network_prefix_follows_the_project_s_minimum(tmp_path):
    slash_20 = BASE + '[network]\ncidr = "10.0.0.0/20"\n'
    assert_refused(tmp_path, slash_20, "network.cidr",
                   "10.0.0.0/20 is smaller than a /19; the data plane needs at least a /19")
    assert load_customer(write(tmp_path, "acme", slash_20), CONTROL_PLANE,
                         rules=CustomerRules(min_network_prefix=20)).network.cidr == "10.0.0.0/20"
    assert_refused(tmp_path, BASE + '[network]\ncidr = "10.0.0.0/21"\n', "network.cidr",
                   "10.0.0.0/21 is smaller than a /20; the data plane needs at least a /20",
                   rules=CustomerRules(min_network_prefix=20))


def test_regions_follow_the_project_s_supported_and_opt_in_lists(tmp_path):
    rules = CustomerRules(supported_regions=frozenset({"us-east-1", "eu-north-1"}),
                          opt_in_regions=frozenset({"eu-north-1"}))
    assert refusal(tmp_path, BASE.replace("us-east-1", "us-west-2"), rules=rules) == [
        f"{tmp_path / 'acme'}.toml: region: 'us-west-2' is not a supported Astro region "
        "(supported: eu-north-1, us-east-1)"]
    assert load_customer(write(tmp_path, "acme", BASE.replace("us-east-1", "eu-north-1")), CONTROL_PLANE,
                         rules=rules).opt_in_region
    assert not load_customer(write(tmp_path, "acme", BASE), CONTROL_PLANE, rules=rules).opt_in_region


def test_the_default_rules_are_the_seed_s():
    assert CustomerRules() == CustomerRules(None, 19, SUPPORTED_REGIONS, OPT_IN_REGIONS)
    assert OPT_IN_REGIONS <= SUPPORTED_REGIONS


def test_inline_policies_are_counted_together():
    activation = permissions_policy()
    assert inline_policies_problems([activation, filler(INLINE_POLICIES_QUOTA - compact_size(activation))]) == []
    assert inline_policies_problems([activation, filler(INLINE_POLICIES_QUOTA + 1 - compact_size(activation))]) == [
        "the role's inline policies would be 10,241 characters in total (whitespace excluded), over IAM's limit of "
        "10,240"]


ALARM = '[tamper_alarm]\nemail = "security@acme.example"\n'
NOT_AN_EMAIL = "is not an email address (name@example.com, at most 254 characters)"


def test_the_tamper_alarm_is_the_file_s_own_else_the_project_s_default(tmp_path):
    default = CustomerRules(tamper_alarm=TamperAlarm(email="soc@astro.example"))
    assert load_customer(write(tmp_path, "acme", BASE), CONTROL_PLANE).tamper_alarm is None
    assert load_customer(write(tmp_path, "acme", BASE), CONTROL_PLANE, rules=default).tamper_alarm == TamperAlarm(
        email="soc@astro.example")
    for rules in (CustomerRules(), default):
        assert load_customer(write(tmp_path, "acme", BASE + ALARM), CONTROL_PLANE, rules=rules).tamper_alarm == \
            TamperAlarm(email="security@acme.example")


@pytest.mark.parametrize("email", ["security", "security@acme", "@acme.example", "sec urity@acme.example",
                                   ".security@acme.example", "security.@acme.example", "sec..urity@acme.example",
                                   "security@acme..example", "security@-acme.example", "${var.email}@acme.example",
                                   "security@acme.example\n", "s@" + "a" * 63 + "." + "b" * 200 + ".example"])
def test_a_bad_tamper_alarm_email_is_one_line_naming_file_and_field(tmp_path, email):
    assert refusal(tmp_path, BASE + f"[tamper_alarm]\nemail = {json.dumps(email)}\n") == [
        f"{tmp_path / 'acme'}.toml: tamper_alarm.email: {shown(email)} {NOT_AN_EMAIL}"]


@pytest.mark.parametrize("text, field, message", [
    ("[tamper_alarm]\n", "tamper_alarm.email", "required key is missing"),
    ("[tamper_alarm]\nemail = 1\n", "tamper_alarm.email", "must be a quoted string, not integer 1"),
    ('tamper_alarm = "security@acme.example"\n', "tamper_alarm", "must be a table, not string 'security@acme.example'"),
    ('[tamper_alarm]\nemail = "security@acme.example"\ncc = "x@acme.example"\n', "tamper_alarm.cc", "unknown key"),
    ('tamperAlarm = { email = "security@acme.example" }\n', "tamperAlarm",
     "written tamper_alarm in a customer file (customer files are snake_case; tamperAlarm is the project-wide default "
     "in cdktf.json)"),
])
def test_a_misshapen_tamper_alarm_is_one_line(tmp_path, text, field, message):
    assert refusal(tmp_path, BASE + text) == [f"{tmp_path / 'acme'}.toml: {field}: {message}"]
