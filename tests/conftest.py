import sys
from pathlib import Path

# The program's packages (components, stacks) and the test support, importable from any cwd.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
