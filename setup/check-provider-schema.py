#!/usr/bin/env python3
"""Compare a locally built provider's schema.json with the installed Python SDK.

Usage: check-provider-schema.py pulumi_docker /var/cache/pgfleet/bin/providers/docker/*/schema.json

Prints every resource (top-level properties) and every object type (nested properties) where
the SDK uses a property name the provider does not know; exit status 1 if there is any.
Run after bumping a provider SDK or the upstream Terraform provider in versions.env.
"""
import importlib.util
import json
import os
import re
import sys

GETTER = re.compile(r'@pulumi\.getter(?:\(name="([^"]+)"\))?\s*\n\s*def (\w+)\(')
INIT = re.compile(r"__init__\(\s*'([^']+)'")


def main(pkg: str, schema_path: str) -> int:
    schema = json.load(open(schema_path))
    root = list(importlib.util.find_spec(pkg).submodule_search_locations)[0]
    res_props, type_props = {}, {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".py"):
                continue
            text = open(os.path.join(dirpath, f), encoding="utf-8").read()
            i = text.find("(pulumi.CustomResource)")
            if i >= 0:
                names = {m.group(1) or m.group(2) for m in GETTER.finditer(text[i:])}
                for tok in INIT.findall(text):
                    res_props[tok] = names
            if f in ("_inputs.py", "outputs.py"):
                for part in re.split(r"\n(?=@pulumi\.(?:input|output)_type\nclass )", text):
                    m = re.match(r"@pulumi\.(?:input|output)_type\nclass (\w+)", part)
                    if m:
                        name = m.group(1).removesuffix("Args")
                        type_props.setdefault(name, set()).update(
                            g.group(1) or g.group(2) for g in GETTER.finditer(part))
    bad = 0
    for tok, spec in sorted(schema.get("resources", {}).items()):
        extra = res_props.get(tok, set()) - set(spec.get("properties", {}))
        if extra:
            bad += 1
            print(f"resource {tok}: SDK-only {sorted(extra)}")
    for tok, spec in sorted(schema.get("types", {}).items()):
        extra = type_props.get(tok.split(":")[-1], set()) - set(spec.get("properties", {}))
        if extra:
            bad += 1
            print(f"type {tok}: SDK-only {sorted(extra)}")
    print(f"{bad} resources/types with SDK property names unknown to the provider")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
