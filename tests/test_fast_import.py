"""The fast provider import (`dataplane.runtime.provider_import`): same output as the stock import, far less loaded."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from bench.fleet import KINDS, write_fleet
from constructs_lib import facts
from constructs_lib.facts import Adoption
from dataplane.project import PROVIDER_IMPORT_ENV
from dataplane.runtime import provider_import
from dataplane.runtime.provider_import import NODE_HOOK, PACKAGE
from dataplane.runtime.toolchain import NODE
from tests.conftest import FIXTURES, files, run_main

PACKAGE_DIR = Path(importlib.util.find_spec(PACKAGE).origin).parent
SUBMODULES = sorted(d.name for d in PACKAGE_DIR.iterdir()
                    if not d.name.startswith("_") and (d / "__init__.py").exists())
IMPORTED = re.compile(rf"\|\s*{PACKAGE}\.([a-z0-9_]+)$", re.MULTILINE)
fast_session = pytest.mark.skipif(provider_import.mode() == "stock", reason=f"this session runs with {PROVIDER_IMPORT_ENV}=stock")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Path:
    """The example customers plus a generated fleet of every shape (role only, network, peering)."""
    directory = tmp_path_factory.mktemp("fleet")
    for example in FIXTURES.glob("*.toml"):
        shutil.copy(example, directory)
    write_fleet(directory, 5 * len(KINDS))
    return directory


@pytest.fixture(scope="module")
def synth(fleet, tmp_path_factory):
    """main.py on the fleet, one process per mode; returns {mode: (outdir, provider submodules imported)}."""
    results = {}
    for mode in ("stock", "fast"):
        outdir = tmp_path_factory.mktemp(mode) / "cdktf.out"
        result = run_main(outdir, DATAPLANE_CUSTOMERS_DIR=str(fleet), NODE_OPTIONS="", PYTHONPROFILEIMPORTTIME="1",
                          **{PROVIDER_IMPORT_ENV: mode})
        assert result.returncode == 0, result.stderr[-3000:]
        results[mode] = outdir, set(IMPORTED.findall(result.stderr))
    return results


@pytest.mark.heavy
def test_fast_and_stock_synth_are_byte_identical_for_every_stack(synth, fleet):
    (stock, _), (fast, _) = synth["stock"], synth["fast"]
    customers = sorted(p.stem for p in fleet.glob("*.toml"))
    assert sorted(p.name for p in (fast / "stacks").iterdir()) == customers
    stock_files, fast_files = files(stock), files(fast)
    assert sorted(fast_files) == sorted(stock_files)
    assert [name for name in stock_files if fast_files[name] != stock_files[name]] == []


def test_stock_imports_every_provider_module_and_fast_only_those_in_use(synth):
    (_, stock), (_, fast) = synth["stock"], synth["fast"]
    assert stock >= set(SUBMODULES)
    assert {"provider", "iam_role", "vpc", "vpc_peering_connection"} <= fast
    described = {f.type.removeprefix("aws_") if f.adoption is not Adoption.DATA_SOURCE else f"data_{f.type}"
                 for f in facts.ALL}
    assert fast <= described | {"_jsii", "provider"}, "a provider module no construct uses was imported"


@fast_session
def test_the_package_is_bare_until_a_submodule_is_used():
    package = sys.modules[PACKAGE]
    assert package.__spec__.name == PACKAGE and package.__path__ == [str(PACKAGE_DIR)]
    assert not hasattr(package, "__jsii_assembly__")  # the package's own __init__ never ran
    assert f"{PACKAGE}.xray_group" not in sys.modules
    assert package.xray_group.XrayGroup.__module__ == f"{PACKAGE}.xray_group"
    with pytest.raises(AttributeError, match="no attribute 'no_such_resource'"):
        package.no_such_resource


@fast_session
def test_install_is_idempotent():
    package, options = sys.modules[PACKAGE], os.environ["NODE_OPTIONS"]
    provider_import.install()
    assert sys.modules[PACKAGE] is package
    assert os.environ["NODE_OPTIONS"] == options
    assert options.count(str(NODE_HOOK)) == 1


def test_stock_mode_installs_nothing(monkeypatch):
    monkeypatch.setenv(PROVIDER_IMPORT_ENV, "stock")
    monkeypatch.delitem(sys.modules, PACKAGE, raising=False)
    monkeypatch.delenv("NODE_OPTIONS", raising=False)
    provider_import.install()
    assert PACKAGE not in sys.modules
    assert "NODE_OPTIONS" not in os.environ


def test_unknown_mode_is_refused(monkeypatch):
    monkeypatch.setenv(PROVIDER_IMPORT_ENV, "lazy")
    with pytest.raises(RuntimeError, match="DATAPLANE_PROVIDER_IMPORT='lazy': expected one of fast, stock"):
        provider_import.install()


def test_missing_package_fails_clearly(monkeypatch):
    monkeypatch.setenv(PROVIDER_IMPORT_ENV, "fast")
    monkeypatch.setattr(provider_import, "PACKAGE", "cdktf_cdktf_provider_nowhere")
    with pytest.raises(ModuleNotFoundError, match="cdktf_cdktf_provider_nowhere is not installed; run `make setup`"):
        provider_import.install()


@pytest.fixture(scope="module")
def node_package(tmp_path_factory) -> Path:
    """The provider's real JavaScript index, alone: none of the modules it requires exist, but `vpc`."""
    lib = tmp_path_factory.mktemp("node") / "node_modules" / "@cdktf" / "provider-aws" / "lib"
    tarball = next((PACKAGE_DIR / "_jsii").glob("*.jsii.tgz"))
    with tarfile.open(tarball) as archive:
        for member in archive:
            if member.name == "package/lib/index.js":
                (lib / "vpc").mkdir(parents=True)
                (lib / "index.js").write_bytes(archive.extractfile(member).read())
                (lib / "vpc" / "index.js").write_text('exports.marker = "vpc";\n')
                return lib / "index.js"
    raise AssertionError(f"no package/lib/index.js in {tarball}")


def require(index: Path, mode: str) -> subprocess.CompletedProcess:
    script = f"const aws = require({json.dumps(str(index))}); console.log(Object.keys(aws).length, aws.vpc.marker);"
    return subprocess.run([str(NODE), "--require", str(NODE_HOOK), "-e", script], capture_output=True, text=True,
                          env={PROVIDER_IMPORT_ENV: mode}, timeout=60)


def test_node_hook_makes_every_module_of_the_real_index_lazy(node_package):
    result = require(node_package, "fast")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(len(SUBMODULES)), "vpc"]


def test_node_hook_leaves_the_index_eager_in_stock_mode(node_package):
    result = require(node_package, "stock")
    assert result.returncode != 0
    assert "Cannot find module './accessanalyzer-analyzer'" in result.stderr
