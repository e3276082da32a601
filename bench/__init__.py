"""Synth benchmark: stock versus fast provider import (`make bench`)."""
