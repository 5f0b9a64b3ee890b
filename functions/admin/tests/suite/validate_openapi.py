"""Validates admin API responses against functions/admin/openapi.yaml.

Reads a JSON list of {"path", "method", "status", "body", "request"?} on stdin (path
is the OpenAPI path template), checks the document itself with openapi-spec-validator,
then each body against its response schema and each request body given (one the API
accepted) against the operation's request body schema, with openapi-schema-validator
(OpenAPI 3.1). Prints "validated N" and exits 0, or prints the first failure and
exits 1.
"""
import json
import sys

import yaml
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

spec = yaml.safe_load(open(sys.argv[1]))
validate(spec)
cases = json.load(sys.stdin)


def resolve(node):
    ref = node.get("$ref") if isinstance(node, dict) else None
    if ref:
        target = spec
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return target
    return node


def check(schema, instance, what):
    schema = dict(schema)
    schema["components"] = spec["components"]
    try:
        OAS31Validator(schema).validate(instance)
    except Exception as e:  # report which case failed, then fail
        print(f"{what}: {e}")
        sys.exit(1)


for case in cases:
    operation = spec["paths"][case["path"]][case["method"]]
    name = f"{case['method'].upper()} {case['path']} {case['status']}"
    if case.get("request") is not None:
        if "requestBody" not in operation:
            print(f"{name}: the request has a body, the document none")
            sys.exit(1)
        body = resolve(operation["requestBody"])
        check(body["content"]["application/json"]["schema"], case["request"], f"{name} request")
    response = resolve(operation["responses"][str(case["status"])])
    check(response["content"]["application/json"]["schema"], case["body"], name)
print(f"validated {len(cases)}")
