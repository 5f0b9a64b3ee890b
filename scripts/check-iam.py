#!/usr/bin/env python3
"""Least-privilege gate for infra/template.yaml.

Fails (exit 1, one line per offender) when an identity-policy statement that
allows something uses Action "*" or "service:*", Resource "*" (unless every
action in it is one AWS only authorises on "*"), NotAction / NotResource, or
names an action that does not exist (such a grant silently does nothing, and
cfn-lint skips action names in SAM templates), or grants anything but
dynamodb:PutItem and dynamodb:Query on the audit table (`AuditTable`) or the
evidence table (`EvidenceTable`): entries and snapshots are immutable, so no role
may UpdateItem, DeleteItem or BatchWriteItem there, and a statement on every
table, `table/*`, counts as one on them). It also flags AWS managed
policies, which carry their own "*" statements where this script cannot see
them, including the ones SAM attaches to the role it generates for a function
without an explicit Role.

Checked: AWS::IAM::Role / User / Group (Policies, ManagedPolicyArns),
AWS::IAM::Policy / RolePolicy / UserPolicy / GroupPolicy / ManagedPolicy, and
AWS::Serverless::Function / StateMachine (Policies, Role). Resource-based
policies (KMS key policies, queue policies, trust policies) are out of scope:
a KMS key policy must say Resource "*" and means "this key".

Configuration has one writer: only the admin function's role (`AdminFunctionRole`,
the control plane behind the IAM-authorised admin API) may create, change or delete
directory secrets (credentials, webhook keys, target secrets), with one exception:
the poller writes refreshed OAuth tokens back (PutSecretValue only). The setup page
changes configuration through the admin API (execute-api:Invoke on its routes). Any other
statement allowing a secret write is a finding, so the CLI or a function cannot
bypass the audited API.

Each function reads only its part of a directory's credentials (DESIGN "Tenant
isolation"). A directory's secrets are three secrets, `<prefix><dir>/bamboohr`,
`/webhook` and `/targets` (ARNs end in "-" and six characters); SECRET_PART_READERS
says which role reads which part: the webhook function the webhook part, the
dispatcher the targets part, the poller the bamboohr part (and the targets part:
it runs SCIM target reconciliations after its runs), the setup page (portal) the
bamboohr part, the admin function all three. A statement allowing secretsmanager:GetSecretValue reaches a part when one
of its resource patterns matches that part's ARN (IAM wildcards: * and ?); a
statement conditioned on the part tag being absent (`"Null":
{"aws:ResourceTag/bamboohr-sync:part": "true"}`, the pre-split secrets of stacks
deployed before the split) reaches no part, since every part carries the tag. A
role that reaches a part it should not, or cannot reach its own, is a finding; so
is a SECRET_READERS_<PART> variable (the roles named in each part's resource
policy) that disagrees with IAM.

A statement whose Resource is a parameter (`!Ref CustomerEventBusArns`) is a
finding unless the parameter has an AllowedPattern (or AllowedValues) that admits
no "*" or "?": otherwise a deployer could grant every resource by passing "*".

Usage: scripts/check-iam.py [TEMPLATE]   (default: infra/template.yaml)
Needs only the standard library and PyYAML.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

# Actions AWS only supports with Resource "*" (no resource-level permissions).
# Add to this list only with a reference to the service authorisation docs.
RESOURCE_STAR_ALLOWED = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}

# Managed policy ARNs (or SAM policy names) accepted despite being opaque here.
MANAGED_POLICY_ALLOWED: set[str] = set()

# SAM attaches these to a role it generates; each holds Resource "*" statements.
SAM_IMPLICIT_POLICIES = {
    None: "AWSLambdaBasicExecutionRole",
    "SQS": "AWSLambdaSQSQueueExecutionRole",
    "Kinesis": "AWSLambdaKinesisExecutionRole",
    "DynamoDB": "AWSLambdaDynamoDBExecutionRole",
    "MSK": "AWSLambdaMSKExecutionRole",
    "MQ": "AWSLambdaMQExecutionRole",
}

SERVICE_WILDCARD = re.compile(r"^[A-Za-z0-9-]+:\*$")

# Logical ids of the append-only tables, and all a role may do on them: append
# (PutItem; the code makes it conditional on the entry not existing) and read (Query).
AUDIT_TABLES = {"AuditTable", "EvidenceTable"}
AUDIT_TABLE_ACTIONS = {"dynamodb:putitem", "dynamodb:query"}
TABLE_WILDCARD = re.compile(r":table/\*")

# Writes of directory secrets, and who may make them (logical id of the role or
# function -> the write actions it may have).
SECRET_WRITES = {
    "secretsmanager:createsecret",
    "secretsmanager:putsecretvalue",
    "secretsmanager:updatesecret",
    "secretsmanager:deletesecret",
    "secretsmanager:restoresecret",
    "secretsmanager:putresourcepolicy",
    "secretsmanager:deleteresourcepolicy",
    "secretsmanager:rotatesecret",
    "secretsmanager:updatesecretversionstage",
    # Tags tell parts from pre-split secrets, which IAM lets every function read.
    "secretsmanager:tagresource",
    "secretsmanager:untagresource",
}
SECRET_WRITERS = {
    "AdminFunctionRole": SECRET_WRITES,
    # Refreshed OAuth tokens are written back by the sync that refreshed them.
    "PollerFunctionRole": {"secretsmanager:putsecretvalue"},
}


# The parts of a directory's secrets and which role reads which (logical ids).
SECRET_PARTS = ("bamboohr", "webhook", "targets")
SECRET_PART_READERS = {
    "WebhookFunctionRole": {"webhook"},
    "DispatcherFunctionRole": {"targets"},
    # The poller also reconciles SCIM targets after its runs (their bearer tokens).
    "PollerFunctionRole": {"bamboohr", "targets"},
    # The setup page reads the BambooHR credential for the company's field list.
    "PortalFunctionRole": {"bamboohr"},
    "AdminFunctionRole": set(SECRET_PARTS),
}
# The tag every part carries; a statement requiring it absent reaches no part.
PART_TAG_KEYS = {"aws:resourcetag/bamboohr-sync:part", "secretsmanager:resourcetag/bamboohr-sync:part"}
SECRET_READ_ACTIONS = {"secretsmanager:getsecretvalue", "secretsmanager:*", "*"}


def part_arn(part: str) -> str:
    """An example ARN of one part's secret, written as the template writes ARNs."""
    return (
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
        f"bamboohr-sync/${{AWS::StackName}}/acme-eu_1/{part}-AbC123"
    )


def iam_glob(pattern: str) -> re.Pattern:
    """An IAM resource pattern (* any run of characters, ? one) as a regex."""
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$")


def only_untagged(stmt: dict) -> bool:
    """Whether the statement applies only to secrets without the part tag."""
    cond = stmt.get("Condition")
    if not isinstance(cond, dict):
        return False
    nulls = cond.get("Null")
    if not isinstance(nulls, dict):
        return False
    return any(k.lower() in PART_TAG_KEYS and str(v).lower() == "true" for k, v in nulls.items())


def secret_parts_read(stmt: dict) -> set[str]:
    """The parts of directory secrets an Allow statement lets its holder read."""
    if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
        return set()
    actions = {str(a).lower() for a in as_list(stmt.get("Action"))}
    if not actions & SECRET_READ_ACTIONS or only_untagged(stmt):
        return set()
    parts = set()
    for resource in as_list(stmt.get("Resource")):
        for alt in expand_if(resource):
            text = literal(alt)
            if text is None:
                continue
            pattern = iam_glob(text)
            parts |= {p for p in SECRET_PARTS if pattern.match(part_arn(p))}
    return parts


def roles_named(value) -> set[str]:
    """Logical ids of the `!GetAtt <Role>.Arn` inside a value (e.g. a Fn::Join)."""
    if isinstance(value, dict):
        target = value.get("Fn::GetAtt")
        if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
            return {target[0]}
        return set().union(*(roles_named(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(roles_named(v) for v in value)) if value else set()
    return set()


def check_secret_parts(statements: list[tuple[str, dict]], resources: dict) -> list[str]:
    """Each role reads exactly its parts (SECRET_PART_READERS), and the admin
    function's SECRET_READERS_<PART> variables name the same roles."""
    reads: dict[str, set[str]] = {}
    for where, stmt in statements:
        owner = where.split("/")[0]
        reads.setdefault(owner, set()).update(secret_parts_read(stmt))
    findings = []
    for owner, parts in sorted(reads.items()):
        extra = parts - SECRET_PART_READERS.get(owner, set())
        if extra:
            findings.append(
                f"{owner}: reads the {', '.join(sorted(extra))} part of directory secrets "
                f"(allowed: {', '.join(sorted(SECRET_PART_READERS.get(owner, set()))) or 'none'})"
            )
    for owner, parts in sorted(SECRET_PART_READERS.items()):
        if owner in resources:
            missing = parts - reads.get(owner, set())
            if missing:
                findings.append(f"{owner}: cannot read its {', '.join(sorted(missing))} part of directory secrets")
    for logical_id, resource in resources.items():
        env = (((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {})
        for part in SECRET_PARTS:
            value = env.get(f"SECRET_READERS_{part.upper()}")
            if value is None:
                continue
            named = roles_named(value)
            iam = {owner for owner, parts in reads.items() if part in parts}
            if named != iam:
                findings.append(
                    f"{logical_id}: SECRET_READERS_{part.upper()} names {sorted(named)}, "
                    f"but IAM lets {sorted(iam)} read the {part} part"
                )
    return findings


WILDCARD_PROBES = (
    "*",
    "?",
    "arn:*",
    "arn:aws:events:us-east-1:123456789012:event-bus/*",
    "arn:aws:events:*:123456789012:event-bus/x",
    "arn:aws:events:us-east-1:*:event-bus/x",
    "arn:aws:events:us-east-1:123456789012:*",
    "arn:aws:sqs:us-east-1:123456789012:*",
)


def check_parameter_resources(label: str, stmt: dict, parameters: dict) -> list[str]:
    """A Resource taken from a parameter must be constrained so it cannot be "*"."""
    if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
        return []
    problems = []
    for resource in as_list(stmt.get("Resource")):
        for alt in expand_if(resource):
            if not (isinstance(alt, dict) and set(alt) == {"Ref"} and alt["Ref"] in parameters):
                continue
            name = alt["Ref"]
            param = parameters[name] or {}
            if "AllowedValues" in param:
                bad = [v for v in as_list(param["AllowedValues"]) if "*" in str(v) or "?" in str(v)]
                if bad:
                    problems.append(f"{label}: Resource from parameter {name}, whose AllowedValues include {bad}")
                continue
            pattern = param.get("AllowedPattern")
            if not pattern:
                problems.append(f"{label}: Resource from parameter {name} without an AllowedPattern (it could be '*')")
                continue
            admitted = [p for p in WILDCARD_PROBES if re.fullmatch(pattern, p)]
            if admitted:
                problems.append(f"{label}: Resource from parameter {name}, whose AllowedPattern admits {admitted[0]!r}")
    return problems


def check_config_writes(where: str, stmt: dict) -> list[str]:
    """Secret writes by anyone but the control plane (see SECRET_WRITERS)."""
    if not isinstance(stmt, dict) or stmt.get("Effect") != "Allow":
        return []
    owner = where.split("/")[0]
    allowed = SECRET_WRITERS.get(owner, set())
    actions = {str(a).lower() for a in as_list(stmt.get("Action"))}
    written = sorted(
        a for a in actions if a in SECRET_WRITES or a in ("secretsmanager:*", "*")
    )
    extra = [a for a in written if a not in allowed]
    if extra:
        return [
            f"{where}: {', '.join(extra)}: only the control plane (the admin API and its "
            "setup page) writes configuration secrets"
        ]
    return []


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short-form tags into long form."""


def _construct_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if tag_suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_known_actions() -> dict[str, set[str]] | None:
    """IAM action names per service from cfn-lint's data, if cfn-lint is installed."""
    try:
        import cfnlint.data.AdditionalSpecs as specs  # type: ignore
    except ImportError:
        return None
    path = Path(specs.__file__).parent / "Policies.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {svc: {a.lower() for a in body.get("Actions", {})} for svc, body in data.items()}


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def is_no_value(value) -> bool:
    return value == {"Ref": "AWS::NoValue"}


def expand_if(value) -> list:
    """All concrete alternatives of a value that may be (or contain) Fn::If."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        args = value["Fn::If"]
        if isinstance(args, list) and len(args) == 3:
            return [alt for branch in args[1:] for alt in expand_if(branch) if not is_no_value(alt)]
    return [value]


def statements_of(document) -> list:
    out = []
    for doc in expand_if(document):
        if not isinstance(doc, dict):
            continue
        for stmt in as_list(doc.get("Statement")):
            for concrete in expand_if(stmt):
                if isinstance(concrete, dict):
                    out.append(concrete)
    return out


def literal(value) -> str | None:
    """A plain string, or the text of a Fn::Sub, for pattern checks."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else (sub[0] if sub and isinstance(sub[0], str) else None)
    return None


# How findings name each put-only table.
TABLE_LABELS = {"AuditTable": "the audit table", "EvidenceTable": "the evidence table"}


def put_only_table(resource) -> str | None:
    """The put-only table a statement resource names (its ARN, an index of it, or
    every table of the account, which counts as the audit table), as findings name
    it; None when it names none."""
    if isinstance(resource, dict):
        if "Fn::GetAtt" in resource:
            target = resource["Fn::GetAtt"]
            if isinstance(target, list) and target and target[0] in AUDIT_TABLES:
                return TABLE_LABELS[target[0]]
            return None
        if "Ref" in resource:
            return TABLE_LABELS.get(resource["Ref"])
        text = json.dumps(resource)
        for name in sorted(AUDIT_TABLES):
            if f"${{{name}" in text or f'"{name}"' in text:
                return TABLE_LABELS[name]
    text = literal(resource)
    if text is not None and TABLE_WILDCARD.search(text):
        return TABLE_LABELS["AuditTable"]
    return None


def covers_audit_table(resource) -> bool:
    """Whether a statement resource names a put-only table (the audit or evidence
    table, an index of one, or every table of the account)."""
    return put_only_table(resource) is not None


def check_statement(where: str, stmt: dict, known: dict[str, set[str]] | None) -> list[str]:
    if stmt.get("Effect") != "Allow":
        return []  # Deny with wildcards only narrows
    label = f"{where}[{stmt.get('Sid', '?')}]"
    problems = []
    if "NotAction" in stmt:
        problems.append(f"{label}: Allow with NotAction")
    if "NotResource" in stmt:
        problems.append(f"{label}: Allow with NotResource")

    actions = []
    for action in as_list(stmt.get("Action")):
        for alt in expand_if(action):
            text = literal(alt)
            if text is None:
                continue
            actions.append(text)
            if text == "*" or SERVICE_WILDCARD.match(text):
                problems.append(f"{label}: Action {text!r}")
            elif known is not None and ":" in text:
                service, name = text.lower().split(":", 1)
                names = known.get(service)
                pattern = re.compile("^" + re.escape(name).replace(r"\*", ".*").replace(r"\?", ".") + "$")
                if names is None:
                    problems.append(f"{label}: unknown service in action {text!r}")
                elif not any(pattern.match(n) for n in names):
                    problems.append(f"{label}: unknown action {text!r} (grants nothing)")

    resources = [alt for r in as_list(stmt.get("Resource")) for alt in expand_if(r)]
    tables = sorted({t for t in (put_only_table(r) for r in resources) if t})
    for table in tables:
        for action in actions:
            if action.lower() not in AUDIT_TABLE_ACTIONS:
                problems.append(
                    f"{label}: {action} on {table} (only dynamodb:PutItem and dynamodb:Query)"
                )
    if any(literal(r) == "*" for r in resources):
        not_allowed = sorted(a for a in actions if a not in RESOURCE_STAR_ALLOWED)
        if not_allowed or not actions:
            problems.append(f"{label}: Resource '*' for {', '.join(not_allowed) or 'no literal action'}")
    return problems


def check_managed(where: str, arns) -> list[str]:
    problems = []
    for arn in as_list(arns):
        for alt in expand_if(arn):
            text = literal(alt) or json.dumps(alt)
            if text not in MANAGED_POLICY_ALLOWED:
                problems.append(f"{where}: managed policy {text} (statements not checkable here)")
    return problems


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    path = Path(argv[1]) if len(argv) > 1 else root / "infra" / "template.yaml"
    template = yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    known = load_known_actions()

    statements: list[tuple[str, dict]] = []
    findings: list[str] = []

    for logical_id, resource in (template.get("Resources") or {}).items():
        rtype = resource.get("Type", "")
        props = resource.get("Properties") or {}

        if rtype in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            for policy in as_list(props.get("Policies")):
                for alt in expand_if(policy):
                    name = alt.get("PolicyName", "?") if isinstance(alt, dict) else "?"
                    for stmt in statements_of(alt.get("PolicyDocument") if isinstance(alt, dict) else None):
                        statements.append((f"{logical_id}/{name}", stmt))
            findings += check_managed(logical_id, props.get("ManagedPolicyArns"))

        elif rtype in (
            "AWS::IAM::Policy",
            "AWS::IAM::RolePolicy",
            "AWS::IAM::UserPolicy",
            "AWS::IAM::GroupPolicy",
            "AWS::IAM::ManagedPolicy",
        ):
            for stmt in statements_of(props.get("PolicyDocument")):
                statements.append((logical_id, stmt))

        elif rtype in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            policies = props.get("Policies")
            if isinstance(policies, (str, dict)):
                policies = [policies]
            for index, policy in enumerate(as_list(policies)):
                for alt in expand_if(policy):
                    if isinstance(alt, str):
                        findings += check_managed(f"{logical_id}/Policies[{index}]", alt)
                    elif isinstance(alt, dict) and "Statement" in alt:
                        for stmt in statements_of(alt):
                            statements.append((f"{logical_id}/Policies[{index}]", stmt))
                    # else: a SAM policy template (e.g. SQSPollerPolicy), scoped by its parameters
            if rtype == "AWS::Serverless::Function" and "Role" not in props:
                event_types = {e.get("Type") for e in (props.get("Events") or {}).values() if isinstance(e, dict)}
                implicit = [SAM_IMPLICIT_POLICIES[None]] + [
                    SAM_IMPLICIT_POLICIES[t] for t in sorted(event_types & set(SAM_IMPLICIT_POLICIES) - {None})
                ]
                for policy in implicit:
                    if policy not in MANAGED_POLICY_ALLOWED:
                        findings.append(
                            f"{logical_id}: no explicit Role, SAM would attach {policy} (Resource '*')"
                        )

    parameters = template.get("Parameters") or {}
    for where, stmt in statements:
        findings += check_statement(where, stmt, known)
        findings += check_config_writes(where, stmt)
        findings += check_parameter_resources(f"{where}[{stmt.get('Sid', '?')}]", stmt, parameters)
    findings += check_secret_parts(statements, template.get("Resources") or {})

    for finding in findings:
        print(f"  {finding}")
    print(f"iam check: {len(statements)} statements, {len(findings)} findings")
    if known is None:
        print("  (action names not verified: cfn-lint's data is not importable)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
