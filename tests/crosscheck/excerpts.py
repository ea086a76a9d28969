"""Checks that the YAML shown in the docs is what deploy/ ships.

Every ```yaml block whose first line is `# excerpt of PATH` must be a part of
a document in PATH: each mapping key it shows has the value the file has
(recursively, so keys may be left out), and each list item it shows matches
some item of the file's list. Prints one line per excerpt; exits 1 on drift.
Usage: excerpts.py ROOT DOC.md...
"""
import re
import sys

import yaml


def deepest(reasons):
    """The reason that got furthest into the file: it names the drift best."""
    return max(reasons, key=lambda why: why.split(":")[0].count(".") + why.split(":")[0].count("["))


def within(part, whole, at):
    if isinstance(part, dict):
        if not isinstance(whole, dict):
            return f"{at}: a mapping, but the file has {whole!r}"
        for key, value in part.items():
            if key not in whole:
                return f"{at}.{key}: not in the file"
            why = within(value, whole[key], f"{at}.{key}")
            if why:
                return why
        return None
    if isinstance(part, list):
        if not isinstance(whole, list):
            return f"{at}: a list, but the file has {whole!r}"
        for index, item in enumerate(part):
            reasons = [within(item, candidate, f"{at}[{index}]") for candidate in whole]
            if reasons and all(reasons):
                return deepest(reasons)
            if not reasons:
                return f"{at}[{index}]: the file's list is empty"
        return None
    if part != whole:
        return f"{at}: {part!r}, but the file has {whole!r}"
    return None


def main():
    root, docs = sys.argv[1], sys.argv[2:]
    failed, checked = False, 0
    for doc in docs:
        text = open(doc, encoding="utf-8").read()
        for match in re.finditer(r"```yaml\n(.*?)```", text, re.S):
            block = match.group(1)
            first = block.splitlines()[0]
            source = re.match(r"#\s*excerpt of (\S+)", first)
            if not source:
                continue
            line = text[: match.start()].count("\n") + 2
            documents = list(yaml.safe_load_all(open(f"{root}/{source.group(1)}")))
            part = yaml.safe_load(block)
            reasons = [within(part, whole, "") for whole in documents]
            checked += 1
            if all(reasons):
                failed = True
                best = deepest(reasons)
                print(f"{doc}:{line}: drifted from {source.group(1)}: {best}")
            else:
                print(f"{doc}:{line}: matches {source.group(1)}")
    print(f"{checked} excerpts checked")
    sys.exit(1 if failed else 0)


main()
