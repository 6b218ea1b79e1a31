"""Generated passwords, secret at the source."""
from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_password(name: str, parent: pulumi.Resource, length: int = 32) -> pulumi.Output[str]:
    """A random alphanumeric password (URL-safe, no escaping needed), marked secret here
    rather than trusting the provider's schema to do it."""
    password = random.RandomPassword(name, length=length, special=False, opts=pulumi.ResourceOptions(parent=parent))
    return pulumi.Output.secret(password.result)
