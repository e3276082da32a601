"""Data plane activation: the customer model and settings (`config`), the activation rules (`policy`),
how synth runs (`runtime`), the synthesized output (`synth_output`) and the operations CLI (`ops`).

Importing any of it changes nothing: the jsii runtime and the fast provider import are prepared
explicitly, by `dataplane.runtime.prepare()`, in the entry points that synthesize.
"""
