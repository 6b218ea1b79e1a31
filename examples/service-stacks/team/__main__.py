"""The team's program: read the config, declare the service's database, export what it needs."""
from stacks.service import build

build()
