"""pgfleet-preview: a pull request's previews as one report (cli.py), from pulumi's digest
(digest.py), grouped and flagged (report.py), posted on GitHub (github.py), for the stacks the
change touches (touched.py)."""
