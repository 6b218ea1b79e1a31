"""Entry point the language host runs (`python <pack dir> <engine address>`): serve the pack."""
import sys
from pathlib import Path


def _import_root(pack_dir: Path) -> Path:
    """The folder that holds the `pgfleet` package: the pack is `pgfleet/policies` when
    installed, and `policies/` beside `pgfleet/` (whose `policies` links to it) in a checkout."""
    for folder in (pack_dir.parent, pack_dir.parent.parent):
        if (folder / "pgfleet" / "__init__.py").is_file():
            return folder
    raise SystemExit(f"pgfleet policy pack: no pgfleet package beside {pack_dir}")


# Run as a directory, the pack's own package is importable only from the folder above it.
sys.path.insert(0, str(_import_root(Path(__file__).absolute().parent)))

from pgfleet.policies.pack import serve  # noqa: E402

serve()
