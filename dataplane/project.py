"""Where the project is, and every environment variable the tool reads, each named once here."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CUSTOMERS_DIR_ENV = "DATAPLANE_CUSTOMERS_DIR"
"""The customers directory, in place of the `customersDir` setting."""
SETTINGS_ENV = "DATAPLANE_SETTINGS"
"""A settings file in place of the project's `cdktf.json` (its `context` is read the same way)."""
SYNTH_WORKERS_ENV = "DATAPLANE_SYNTH_WORKERS"
"""How many processes synthesize a large fleet (default: the CPU count; 1 turns sharding off)."""
PROVIDER_IMPORT_ENV = "DATAPLANE_PROVIDER_IMPORT"
"""`fast` (default: only the provider modules in use) or `stock` (the provider package's own import)."""
TF_MIRROR_ENV = "DATAPLANE_TF_MIRROR"
"""A terraform filesystem mirror holding the aws provider, in place of the standard directories."""
OUTDIR_ENV = "CDKTF_OUTDIR"
"""cdktf's: where the app synthesizes (default `cdktf.out`)."""
CDKTF_CLI_ENV = "SYNTH_HCL_OUTPUT"
"""Set by the cdktf CLI for the app it runs (the CLI then removes stale stack directories itself)."""
JSII_NODE_ENV = "JSII_NODE"
"""jsii's: the Node binary its kernel runs on."""
NODE_OPTIONS_ENV = "NODE_OPTIONS"
"""Node's: how the fast provider import reaches jsii's Node process."""
