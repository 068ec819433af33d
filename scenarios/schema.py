"""The JSON Schema of scenario files, from the pydantic models, for editors and CI.

    python -m scenarios.schema            # writes scenarios/schema.json
    python -m scenarios.schema --check    # exits 1 when scenarios/schema.json is out of date
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from scenarios.models import BARE, KINDS, ScenarioFile

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.json"


def schema_text() -> str:
    """The schema as the file holds it (sorted keys, 2-space indent, newline at the end)."""
    schema = _tidy(ScenarioFile.model_json_schema(by_alias=True))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "didchat scenario"
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _tidy(schema: dict) -> dict:
    """One shared `Step` definition (with the bare words close and stop); kind keys required."""
    defs = schema["$defs"]
    names = {m.__name__: kind for kind, m in KINDS.items()}
    step_refs = [{"$ref": f"#/$defs/{n}"} for n in names]
    for name, kind in names.items():
        defs[name]["required"] = sorted({kind, *defs[name].get("required", [])})
    wait = defs["WaitReply"]
    wait["properties"]["timeout"] = wait["properties"]["timeout"]["anyOf"][0]
    wait["required"] = sorted({*wait["required"], "timeout"})
    defs["Step"] = {"oneOf": [*step_refs, {"enum": list(BARE)}],
                    "description": "A step: a mapping whose kind key (reply, if, ...) says what it does."}
    return _replace(schema, {"oneOf": step_refs}, {"$ref": "#/$defs/Step"})


def _replace(node: object, old: object, new: object) -> object:
    if node == old:
        return new
    if isinstance(node, dict):
        return {k: (_replace(v, old, new) if k != "Step" else v) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, old, new) for v in node]
    return node


def main(argv: list[str]) -> int:
    text = schema_text()
    if "--check" in argv:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is out of date: run python -m scenarios.schema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
