"""pgfleet as a Pulumi component package, for programs in other languages (`component.py`)."""
from pathlib import Path

#: The folder a program's Pulumi.yaml names under `packages:` (`python -m pgfleet.provider` prints it).
PLUGIN_DIR = Path(__file__).absolute().parent
