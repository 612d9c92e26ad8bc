"""Thin typer apps: parse options, call the packages, turn DigitError into one clear line."""
