"""Fast import of the AWS provider bindings: only the provider modules in use are loaded.

`cdktf_cdktf_provider_aws` holds 2,135 generated resource modules, and both of its halves load
every one of them: the Python package's `__init__` imports them all (about 7 s), and jsii's
Node process requires every JavaScript module when the assembly loads (about 1.7 s and
400 MB). `install()` skips both and changes nothing else:

- Python: the package goes into `sys.modules` as a bare package (its spec and `__path__`, its
  `__init__` not run), so `from cdktf_cdktf_provider_aws.vpc import Vpc` imports `_jsii` (the
  assembly, loaded once) and `vpc`, nothing more. Other submodules still import on demand,
  also as attributes (`cdktf_cdktf_provider_aws.subnet`).
- Node: `provider_import.js`, preloaded into jsii's Node process through `NODE_OPTIONS`, turns
  each `exports.x = require("./x")` line of the package's JavaScript index into a getter, so
  a JavaScript module loads when it is first used.

The synthesized output is byte-identical either way (`tests/test_fast_import.py`).
`dataplane.runtime.prepare()` calls `install()`; the entry points that build stacks (`main.py`,
the tests' session) call it before they import cdktf, so every import of the provider goes through it.

`DATAPLANE_PROVIDER_IMPORT=stock` keeps the package's own eager import (in Python and Node),
for comparison (`make bench`) or as an escape hatch; `fast`, the default, is this module.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from pkgutil import extend_path
from types import ModuleType

from dataplane.project import NODE_OPTIONS_ENV, PROVIDER_IMPORT_ENV

PACKAGE = "cdktf_cdktf_provider_aws"
MODES = ("fast", "stock")
NODE_HOOK = Path(__file__).with_name("provider_import.js")


def mode() -> str:
    """`fast`, unless `DATAPLANE_PROVIDER_IMPORT` says `stock`; any other value is refused."""
    value = os.environ.get(PROVIDER_IMPORT_ENV) or "fast"
    if value not in MODES:
        raise RuntimeError(f"{PROVIDER_IMPORT_ENV}={value!r}: expected one of {', '.join(MODES)}")
    return value


def install() -> None:
    """Load the provider lazily from now on, in Python and in jsii's Node process.

    Idempotent. Does nothing in stock mode or once the package is imported (its `__init__`
    has then run). Raises `ModuleNotFoundError` when the package is not installed.
    """
    if mode() == "stock" or PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed; run `make setup` "
                                  "(pip install -r requirements.txt)", name=PACKAGE)
    package = importlib.util.module_from_spec(spec)
    package.__path__ = extend_path(package.__path__, PACKAGE)  # as the package's own __init__ does
    package.__getattr__ = _submodule  # type: ignore[attr-defined]  (PEP 562)
    sys.modules[PACKAGE] = package
    _preload_node_hook()


def _submodule(name: str) -> ModuleType:
    """`cdktf_cdktf_provider_aws.<name>` as an attribute: import the submodule on first use."""
    if not name.startswith("_"):
        try:
            return importlib.import_module(f"{PACKAGE}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{PACKAGE}.{name}":
                raise
    raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")


def _preload_node_hook() -> None:
    """Add `--require <provider_import.js>` to `NODE_OPTIONS`, which jsii's Node process inherits."""
    options = os.environ.get(NODE_OPTIONS_ENV, "")
    if str(NODE_HOOK) not in options:
        require = f"--require {json.dumps(str(NODE_HOOK), ensure_ascii=False)}"
        os.environ[NODE_OPTIONS_ENV] = f"{options} {require}".strip()
