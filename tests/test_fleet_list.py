"""`python -m dataplane list`: the example fleet, and overlapping data-plane CIDRs in a generated one."""

from __future__ import annotations

import json

import pytest

from dataplane.ops.cli import main
from dataplane.project import CUSTOMERS_DIR_ENV


def test_lists_both_examples(capsys):
    assert main(["list"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "NAME    ACCOUNT       REGION     NETWORK        PEERING",
        "acme    123456789012  us-east-1  -              -",
        "globex  210987654321  us-west-2  172.20.0.0/19  vpc-0a1b2c3d4e5f60718 (111122223333, us-west-2): 10.10.0.0/16",
    ]


def write_fleet(directory, networks: dict[str, tuple[str, str | None]]) -> None:
    for index, (name, (region, cidr)) in enumerate(networks.items()):
        network = f'\n[network]\ncidr = "{cidr}"\n' if cidr else ""
        (directory / f"{name}.toml").write_text(
            f'account_id = "{100000000000 + index}"\nregion = "{region}"\nexternal_id = "ext-{name}"\n{network}')


def test_flags_overlapping_data_plane_cidrs_and_opt_in_regions(tmp_path, monkeypatch, capsys):
    write_fleet(tmp_path, {"alpha": ("us-east-1", "10.0.0.0/16"), "bravo": ("me-south-1", "10.0.32.0/19"),
                           "charlie": ("eu-west-1", "10.1.0.0/19"), "delta": ("us-west-2", None),
                           "echo": ("us-east-2", "10.1.0.0/16")})
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(tmp_path))
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "ACCOUNT", "REGION", "NETWORK", "PEERING"]
    assert lines[2].split() == ["bravo", "100000000001", "me-south-1", "(opt-in)", "10.0.32.0/19", "-"]
    assert lines[6:] == ["WARN  alpha and bravo: data-plane CIDRs 10.0.0.0/16 and 10.0.32.0/19 overlap",
                         "WARN  charlie and echo: data-plane CIDRs 10.1.0.0/19 and 10.1.0.0/16 overlap"]

    assert main(["list", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in result["customers"]] == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert result["customers"][1]["opt_in_region"] is True and result["customers"][3]["network_cidr"] is None
    assert result["overlaps"] == [{"customers": ["alpha", "bravo"], "cidrs": ["10.0.0.0/16", "10.0.32.0/19"]},
                                  {"customers": ["charlie", "echo"], "cidrs": ["10.1.0.0/19", "10.1.0.0/16"]}]


def test_invalid_fleet_exits_2_naming_the_problem(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken.toml").write_text('account_id = "1"\n')
    monkeypatch.setenv(CUSTOMERS_DIR_ENV, str(tmp_path))
    with pytest.raises(SystemExit) as exit:
        main(["list"])
    assert exit.value.code == 2
    assert "broken.toml: account_id:" in capsys.readouterr().err
