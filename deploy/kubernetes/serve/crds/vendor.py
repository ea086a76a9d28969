#!/usr/bin/env python3
"""Vendors the CRD schemas the serve manifests are validated against:
the openAPIV3Schema of Flagger's Canary and of Argo Rollouts' Rollout and
AnalysisTemplate, as JSON, from the controllers' own CRD files.

Usage: vendor.py FLAGGER_CHECKOUT ARGO_ROLLOUTS_CHECKOUT
(the checkouts' commits are written beside each schema in VERSIONS)."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
SOURCES = [
    # (checkout argument index, file in the repository, kind, output)
    (1, "artifacts/flagger/crd.yaml", "Canary", "flagger-canary.json"),
    (2, "manifests/crds/rollout-crd.yaml", "Rollout", "argo-rollout.json"),
    (2, "manifests/crds/analysis-template-crd.yaml", "AnalysisTemplate", "argo-analysistemplate.json"),
]


def show(repo, path):
    return subprocess.run(["git", "--git-dir", repo, "show", f"HEAD:{path}"],
                          check=True, capture_output=True, text=True).stdout


def main():
    versions = []
    for index, path, kind, out in SOURCES:
        repo = sys.argv[index]
        commit = subprocess.run(["git", "--git-dir", repo, "rev-parse", "HEAD"],
                                check=True, capture_output=True, text=True).stdout.strip()
        for doc in yaml.safe_load_all(show(repo, path)):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            if doc["spec"]["names"]["kind"] != kind:
                continue
            version = next(v for v in doc["spec"]["versions"] if v.get("storage"))
            schema = version["schema"]["openAPIV3Schema"]
            group = doc["spec"]["group"]
            (HERE / out).write_text(json.dumps({
                "apiVersion": f"{group}/{version['name']}", "kind": kind,
                "schema": schema}, separators=(",", ":"), sort_keys=True) + "\n")
            versions.append(f"{out}: {path} of {repo.split('/')[-2].replace('+', '/')} at {commit}")
    (HERE / "VERSIONS").write_text("\n".join(versions) + "\n")


if __name__ == "__main__":
    main()
