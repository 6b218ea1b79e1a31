"""Pulumi entry point: validate the stack config, then build the stack on its platform."""
import sys

from pgfleet.stacks import ConfigError, run

try:
    run()
except ConfigError as error:
    # Printed whole and exit non-zero: nothing has been registered yet.
    print(error, file=sys.stderr)
    sys.exit(1)
