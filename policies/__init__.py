"""pgfleet's policy pack: the invariants every stack built from its components must keep,
enforced by the engine on preview and up (`--policy-pack`)."""
from pathlib import Path

#: The directory to give `pulumi preview|up --policy-pack`.
PACK_DIR = Path(__file__).resolve().parent
#: The pack's name, as the engine reports a violation: "[mandatory]  pgfleet v0.1.0  <policy> ...".
PACK_NAME = "pgfleet"
