"""What runs against a live account or reads synthesized output.

One CLI (`python -m dataplane`, `cli.py`), one module per command.
"""
