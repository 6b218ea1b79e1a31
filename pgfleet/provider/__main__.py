"""Serves pgfleet's component package (run by the engine through the Python language host), or
with --path prints the folder to name in a program's `packages:`."""
import sys
from pathlib import Path


def _import_root(plugin_dir: Path) -> Path:
    """The folder that holds the `pgfleet` package this plugin belongs to."""
    return plugin_dir.parent.parent


if __name__ == "__main__":
    # Run as a folder, the plugin's own package is importable only from two folders up.
    sys.path.insert(0, str(_import_root(Path(__file__).absolute().parent)))
    from pgfleet.provider.component import serve

    serve(sys.argv[1:])
