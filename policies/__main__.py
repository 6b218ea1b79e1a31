"""Entry point the language host runs (`python <pack dir> <engine address>`): serve the pack."""
import sys
from pathlib import Path

# Run as a directory, the pack's own package is importable only from its parent.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.pack import serve  # noqa: E402

serve()
