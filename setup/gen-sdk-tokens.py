#!/usr/bin/env python3
"""Print the resource and function tokens a Pulumi Python SDK package uses, as JSON.

Usage: gen-sdk-tokens.py pulumi_vault > setup/providers/vault.tokens.json

The pgfleet provider builds (setup/go/bridged) map Terraform resource names onto exactly
these tokens, so the locally built plugin answers to what the installed SDK sends.
"""
import importlib.metadata
import importlib.util
import json
import os
import re
import sys

RES = re.compile(r"super\(\s*\w+\s*,\s*__self__\s*\)\.__init__\(\s*['\"]([^'\"]+)['\"]")
# property getters of a resource class: @pulumi.getter or @pulumi.getter(name="wireName")
GETTER = re.compile(r'@pulumi\.getter(?:\(name="([^"]+)"\))?\s*\n\s*def (\w+)\(')
FN = re.compile(r"pulumi\.runtime\.invoke(?:_output)?\(\s*['\"]([^'\"]+)['\"]")


def main(pkg: str) -> None:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"package {pkg} is not installed")
    root = list(spec.submodule_search_locations)[0]
    resources, functions, properties = set(), set(), {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".py"):
                continue
            text = open(os.path.join(dirpath, f), encoding="utf-8").read()
            toks = [t for t in RES.findall(text) if t.count(":") == 2]
            resources.update(toks)
            # wire names of the resource's properties (the getters after the CustomResource class)
            i = text.find("(pulumi.CustomResource)")
            if toks and i >= 0:
                names = {m.group(1) or m.group(2) for m in GETTER.finditer(text[i:])}
                for t in toks:
                    properties[t] = sorted(names)
            functions.update(FN.findall(text))
    dist = pkg.replace("_", "-")
    out = {
        "package": dist,
        "sdkVersion": importlib.metadata.version(dist),
        "resources": sorted(resources),
        "functions": sorted(f for f in functions if "/" in f and not f.endswith("/getProvider:getProvider")),
        "properties": {t: properties[t] for t in sorted(properties)},
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
