"""The team's stack program."""
