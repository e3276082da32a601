"""What runs against a live account or reads synthesized output: one CLI (`python -m dataplane`), one module per command."""
