#!/usr/bin/env python3
"""Validates custom resources in YAML files against the vendored CRD
schemas (deploy/kubernetes/serve/crds/*.json): each document whose
apiVersion and kind a schema names must validate; a document no schema
names is left to kubernetes-validate. Prints one line per document and
exits 1 on the first that does not validate.

Usage: validate_crds.py CRD_DIR FILE.yaml..."""
import json
import sys
from pathlib import Path

import jsonschema
import yaml


def strict(schema):
    """As the API server's strict field validation (kubectl --validate=strict):
    an object with listed properties admits no others, unless the CRD keeps
    unknown fields there."""
    if isinstance(schema, dict):
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def main():
    schemas = {}
    for path in Path(sys.argv[1]).glob("*.json"):
        crd = json.loads(path.read_text())
        schema = strict(crd["schema"])
        # metadata is the API server's ObjectMeta, not the CRD's to list.
        schema.setdefault("properties", {})["metadata"] = {"type": "object"}
        schemas[(crd["apiVersion"], crd["kind"])] = schema
    checked = 0
    for name in sys.argv[2:]:
        for doc in yaml.safe_load_all(Path(name).read_text()):
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key not in schemas:
                continue
            try:
                jsonschema.validate(doc, schemas[key])
            except jsonschema.ValidationError as err:
                where = "/".join(str(p) for p in err.absolute_path)
                print(f"{name}: {key[1]} {doc['metadata']['name']}: {where}: {err.message}")
                sys.exit(1)
            print(f"{name}: {key[1]} {doc['metadata']['name']}: valid")
            checked += 1
    print(f"{checked} custom resources valid")


if __name__ == "__main__":
    main()
