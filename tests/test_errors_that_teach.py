"""Refusals that say how to fix the input: the nearest known key, a quoted account id."""

from __future__ import annotations

import json

import pytest

from dataplane.config.customer import load_customer
from dataplane.config.errors import ConfigError
from dataplane.config.settings import load_settings

CONTROL_PLANE = "406882777402"
VALID = 'account_id = "123456789012"\nregion = "us-east-1"\nexternal_id = "astro-3f9c2b7e"\n'


def problems_of(path, load) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path)
    return [str(p) for p in caught.value.problems]


def customer_problems(tmp_path, text: str) -> list[str]:
    path = tmp_path / "acme.toml"
    path.write_text(text)
    return problems_of(path, lambda p: load_customer(p, CONTROL_PLANE))


@pytest.mark.parametrize("text, field, nearest", [
    (VALID.replace("external_id", "externel_id"), "externel_id", "external_id"),
    (VALID.replace("account_id", "acount_id"), "acount_id", "account_id"),
    (VALID + '[netwrok]\ncidr = "10.0.0.0/19"\n', "netwrok", "network"),
    (VALID + '[network]\ncidrr = "10.0.0.0/19"\n', "network.cidrr", "cidr"),
])
def test_an_unknown_key_in_a_customer_file_names_the_nearest_known_one(tmp_path, text, field, nearest):
    problems = customer_problems(tmp_path, text)
    assert f"{tmp_path / 'acme.toml'}: {field}: unknown key; did you mean {nearest}?" in problems, problems


def test_a_key_like_no_known_one_is_only_unknown(tmp_path):
    problems = customer_problems(tmp_path, VALID + 'colour = "blue"\n')
    assert problems == [f"{tmp_path / 'acme.toml'}: colour: unknown key"]


@pytest.mark.parametrize("context, field, nearest", [
    ({"controlPlaneAcountId": "406882777402"}, "context.controlPlaneAcountId", "controlPlaneAccountId"),
    ({"backend": {"type": "s3", "bucket": "state-bucket", "region": "us-east-1", "keyPrefx": "x"}},
     "context.backend.s3.keyPrefx", "keyPrefix"),
])
def test_an_unknown_setting_names_the_nearest_known_one(tmp_path, context, field, nearest):
    path = tmp_path / "cdktf.json"
    path.write_text(json.dumps({"context": context}))
    assert f"{path}: {field}: unknown key; did you mean {nearest}?" in problems_of(path, load_settings)


def test_an_unquoted_account_id_with_a_leading_zero_says_to_quote_it(tmp_path):
    problems = customer_problems(tmp_path, VALID.replace('"123456789012"', "012345678901"))
    assert problems == [f'{tmp_path / "acme.toml"}: account_id: a number cannot begin with 0: quote it '
                        '(account_id = "012345678901"), as every account id is written, so its leading zero is kept']


def test_other_toml_errors_are_still_named_as_such(tmp_path):
    problems = customer_problems(tmp_path, VALID + "region = \n")
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'acme.toml'}: (file): not valid TOML: ")
