#!/usr/bin/env python3
"""Tests of scripts/check-iam.py: each wildcard or opaque grant it must refuse is
planted in a small template and must be reported; narrow grants must pass; and the
stack's own template must pass.

Usage: scripts/test_check_iam.py   (scripts/test runs it with the test peers' Python,
which has PyYAML and cfn-lint's action list)
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import tempfile
import textwrap
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("check_iam", HERE / "check-iam.py")
check_iam = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_iam)


def run_check(template: str) -> tuple[int, str]:
    """Runs the check on `template` (YAML text); returns its exit code and output."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "template.yaml"
        path.write_text(textwrap.dedent(template))
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = check_iam.main(["check-iam.py", str(path)])
        return code, out.getvalue()


def function(statements: str, extra: str = "") -> str:
    """A template with one function with an explicit role whose inline policy holds
    `statements` (YAML list items, indented for the policy document)."""
    return f"""
    AWSTemplateFormatVersion: "2010-09-09"
    Transform: AWS::Serverless-2016-10-31
    Conditions:
      HasBus: !Equals [!Ref "AWS::Region", us-east-1]
    Resources:
      Table:
        Type: AWS::DynamoDB::Table
      Role:
        Type: AWS::IAM::Role
        Properties:
          AssumeRolePolicyDocument:
            Statement:
              - Effect: Allow
                Principal: {{Service: lambda.amazonaws.com}}
                Action: sts:AssumeRole
          Policies:
            - PolicyName: inline
              PolicyDocument:
                Version: "2012-10-17"
                Statement:
{textwrap.indent(textwrap.dedent(statements).strip(), " " * 18)}
      Fn:
        Type: AWS::Serverless::Function
        Properties:
          Role: !GetAtt Role.Arn
{extra}
    """


SECRETS = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:bamboohr-sync/${AWS::StackName}"


def roles(grants: dict[str, str], parameters: str = "", extra: str = "") -> str:
    """A template with one explicit role per entry of `grants` (logical id ->
    statements, YAML list items)."""
    body = ""
    for role_id, statements in grants.items():
        body += f"""
      {role_id}:
        Type: AWS::IAM::Role
        Properties:
          AssumeRolePolicyDocument:
            Statement:
              - Effect: Allow
                Principal: {{Service: lambda.amazonaws.com}}
                Action: sts:AssumeRole
          Policies:
            - PolicyName: inline
              PolicyDocument:
                Version: "2012-10-17"
                Statement:
{textwrap.indent(textwrap.dedent(statements).strip(), " " * 18)}
"""
    return f"""
    AWSTemplateFormatVersion: "2010-09-09"
    Parameters:
      Unused: {{Type: String, Default: ""}}
{textwrap.indent(textwrap.dedent(parameters).strip(), " " * 6)}
    Resources:{body}{extra}
    """


def read(resource: str, sid: str = "Read", extra: str = "") -> str:
    return f'- {{Sid: {sid}, Effect: Allow, Action: secretsmanager:GetSecretValue, Resource: !Sub "{resource}"{extra}}}'


OWN_PARTS = {
    "WebhookFunctionRole": read(SECRETS + "/*/webhook-??????"),
    "DispatcherFunctionRole": read(SECRETS + "/*/targets-??????"),
    "PollerFunctionRole": read(SECRETS + "/*/bamboohr-??????")
    + "\n"
    + read(SECRETS + "/*/targets-??????", "Targets"),
    "AdminFunctionRole": read(SECRETS + "/*"),
}


NARROW = """
- Sid: Table
  Effect: Allow
  Action: [dynamodb:GetItem, dynamodb:PutItem]
  Resource: !GetAtt Table.Arn
- Sid: Traces
  Effect: Allow
  Action: [xray:PutTraceSegments, xray:PutTelemetryRecords]
  Resource: "*"
"""


class CheckIamTest(unittest.TestCase):
    def assert_flags(self, template: str, *needles: str) -> None:
        code, out = run_check(template)
        self.assertEqual(code, 1, out)
        for needle in needles:
            self.assertIn(needle, out)

    def test_a_secret_write_outside_the_admin_api_is_flagged(self):
        self.assert_flags(
            function(
                "- {Sid: Secrets, Effect: Allow, Action: [secretsmanager:GetSecretValue, "
                "secretsmanager:PutSecretValue, secretsmanager:CreateSecret], "
                "Resource: !GetAtt Table.Arn}"
            ),
            "secretsmanager:createsecret, secretsmanager:putsecretvalue: only the control plane",
        )

    def test_the_stack_writes_configuration_only_through_the_admin_api(self):
        template = (HERE.parent / "infra" / "template.yaml").read_text()
        writers = set()
        loaded = check_iam.yaml.load(template, Loader=check_iam.CfnLoader)
        for logical_id, resource in loaded["Resources"].items():
            for policy in (resource.get("Properties") or {}).get("Policies") or []:
                if not isinstance(policy, dict) or "PolicyDocument" not in policy:
                    continue
                for stmt in check_iam.as_list(policy["PolicyDocument"].get("Statement")):
                    if not isinstance(stmt, dict):
                        continue
                    actions = {str(a).lower() for a in check_iam.as_list(stmt.get("Action"))}
                    if actions & check_iam.SECRET_WRITES:
                        writers.add((logical_id, tuple(sorted(actions & check_iam.SECRET_WRITES))))
        roles = {w[0] for w in writers}
        self.assertEqual(roles, {"AdminFunctionRole", "PollerFunctionRole"}, writers)
        # The setup page changes configuration only through the admin API's routes.
        portal = loaded["Resources"]["PortalFunctionRole"]["Properties"]["Policies"][0]
        invokes = [
            s for s in portal["PolicyDocument"]["Statement"]
            if s.get("Action") == "execute-api:Invoke"
        ]
        self.assertEqual(len(invokes), 1, portal)
        poller = [w for w in writers if w[0] == "PollerFunctionRole"]
        self.assertEqual(poller, [("PollerFunctionRole", ("secretsmanager:putsecretvalue",))])
        admin = [w for w in writers if w[0] == "AdminFunctionRole"][0][1]
        self.assertIn("secretsmanager:createsecret", admin)
        self.assertIn("secretsmanager:deletesecret", admin)

    def test_narrow_grants_pass(self):
        code, out = run_check(function(NARROW))
        self.assertEqual(code, 0, out)
        self.assertIn("2 statements, 0 findings", out)

    def test_an_action_star_is_flagged(self):
        self.assert_flags(
            function("- {Sid: All, Effect: Allow, Action: '*', Resource: !GetAtt Table.Arn}"),
            "[All]: Action '*'",
        )

    def test_a_service_wildcard_is_flagged(self):
        self.assert_flags(
            function("- {Sid: Ddb, Effect: Allow, Action: 'dynamodb:*', Resource: !GetAtt Table.Arn}"),
            "[Ddb]: Action 'dynamodb:*'",
        )

    def test_resource_star_is_flagged_where_the_action_takes_a_resource(self):
        self.assert_flags(
            function("- {Sid: Put, Effect: Allow, Action: [dynamodb:PutItem, xray:PutTraceSegments], Resource: '*'}"),
            "[Put]: Resource '*' for dynamodb:PutItem",
        )

    def test_resource_star_is_accepted_for_actions_aws_only_authorises_on_star(self):
        code, out = run_check(
            function("- {Sid: Metrics, Effect: Allow, Action: cloudwatch:PutMetricData, Resource: '*'}")
        )
        self.assertEqual(code, 0, out)

    def test_not_action_and_not_resource_are_flagged(self):
        self.assert_flags(
            function(
                """
                - {Sid: NA, Effect: Allow, NotAction: iam:PassRole, Resource: !GetAtt Table.Arn}
                - {Sid: NR, Effect: Allow, Action: dynamodb:GetItem, NotResource: !GetAtt Table.Arn}
                """
            ),
            "[NA]: Allow with NotAction",
            "[NR]: Allow with NotResource",
        )

    def test_a_deny_with_wildcards_only_narrows_and_passes(self):
        code, out = run_check(function("- {Sid: D, Effect: Deny, Action: '*', Resource: '*'}"))
        self.assertEqual(code, 0, out)

    def test_a_wildcard_inside_either_branch_of_a_condition_is_flagged(self):
        self.assert_flags(
            function(
                """
                - !If
                  - HasBus
                  - {Sid: Bus, Effect: Allow, Action: events:PutEvents, Resource: '*'}
                  - !Ref AWS::NoValue
                """
            ),
            "[Bus]: Resource '*' for events:PutEvents",
        )

    def test_a_managed_policy_is_flagged_as_uncheckable(self):
        template = function(NARROW).replace(
            "          Policies:\n",
            "          ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]\n"
            "          Policies:\n",
            1,
        )
        self.assert_flags(template, "managed policy arn:aws:iam::aws:policy/AdministratorAccess")

    def test_a_function_without_an_explicit_role_is_flagged_for_sams_implicit_policies(self):
        template = """
        AWSTemplateFormatVersion: "2010-09-09"
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Events:
                Queue: {Type: SQS, Properties: {Queue: arn:aws:sqs:us-east-1:1:q}}
        """
        self.assert_flags(
            template,
            "SAM would attach AWSLambdaBasicExecutionRole",
            "SAM would attach AWSLambdaSQSQueueExecutionRole",
        )

    def test_an_action_that_does_not_exist_is_flagged_when_the_action_list_is_available(self):
        if check_iam.load_known_actions() is None:
            self.skipTest("cfn-lint's action list is not importable here")
        self.assert_flags(
            function("- {Sid: Typo, Effect: Allow, Action: dynamodb:PutItems, Resource: !GetAtt Table.Arn}"),
            "unknown action 'dynamodb:PutItems'",
        )

    def test_updating_the_audit_table_is_flagged(self):
        self.assert_flags(
            function("- {Sid: Audit, Effect: Allow, Action: [dynamodb:PutItem, dynamodb:UpdateItem], Resource: !GetAtt AuditTable.Arn}"),
            "[Audit]: dynamodb:UpdateItem on the audit table",
        )

    def test_deleting_or_batch_writing_on_the_audit_table_through_a_sub_or_every_table_is_flagged(self):
        self.assert_flags(
            function(
                """
                - {Sid: Del, Effect: Allow, Action: dynamodb:DeleteItem, Resource: !Sub "${AuditTable.Arn}"}
                - {Sid: All, Effect: Allow, Action: dynamodb:BatchWriteItem, Resource: !Sub "arn:aws:dynamodb:us-east-1:1:table/*"}
                """
            ),
            "[Del]: dynamodb:DeleteItem on the audit table",
            "[All]: dynamodb:BatchWriteItem on the audit table",
        )

    def test_updating_or_deleting_evidence_rows_is_flagged(self):
        self.assert_flags(
            function(
                """
                - {Sid: Upd, Effect: Allow, Action: [dynamodb:PutItem, dynamodb:UpdateItem], Resource: !GetAtt EvidenceTable.Arn}
                - {Sid: Del, Effect: Allow, Action: dynamodb:DeleteItem, Resource: !Sub "${EvidenceTable.Arn}"}
                """
            ),
            "[Upd]: dynamodb:UpdateItem on the evidence table",
            "[Del]: dynamodb:DeleteItem on the evidence table",
        )

    def test_putting_and_querying_the_evidence_table_pass(self):
        code, out = run_check(
            function("- {Sid: Evidence, Effect: Allow, Action: [dynamodb:PutItem, dynamodb:Query], Resource: !GetAtt EvidenceTable.Arn}")
        )
        self.assertEqual(code, 0, out)

    def test_putting_and_querying_the_audit_table_pass(self):
        code, out = run_check(
            function("- {Sid: Audit, Effect: Allow, Action: [dynamodb:PutItem, dynamodb:Query], Resource: !GetAtt AuditTable.Arn}")
        )
        self.assertEqual(code, 0, out)

    def test_each_function_of_the_stack_reads_only_its_part_of_directory_secrets(self):
        template = (HERE.parent / "infra" / "template.yaml").read_text()
        loaded = check_iam.yaml.load(template, Loader=check_iam.CfnLoader)
        reads: dict[str, set[str]] = {}
        for logical_id, resource in loaded["Resources"].items():
            for policy in (resource.get("Properties") or {}).get("Policies") or []:
                if isinstance(policy, dict) and "PolicyDocument" in policy:
                    for stmt in check_iam.statements_of(policy["PolicyDocument"]):
                        reads.setdefault(logical_id, set()).update(check_iam.secret_parts_read(stmt))
        self.assertEqual(reads["WebhookFunctionRole"], {"webhook"})
        self.assertEqual(reads["DispatcherFunctionRole"], {"targets"})
        self.assertEqual(reads["PollerFunctionRole"], {"bamboohr", "targets"})
        self.assertEqual(reads["PortalFunctionRole"], {"bamboohr"})
        self.assertEqual(reads["AdminFunctionRole"], {"bamboohr", "webhook", "targets"})
        self.assertFalse({r for r, parts in reads.items() if parts} - set(check_iam.SECRET_PART_READERS))

    def test_functions_reading_their_own_parts_pass(self):
        code, out = run_check(roles(OWN_PARTS))
        self.assertEqual(code, 0, out)

    def test_a_function_reading_every_directory_secret_is_flagged(self):
        grants = dict(OWN_PARTS, WebhookFunctionRole=read(SECRETS + "/*"))
        self.assert_flags(roles(grants), "WebhookFunctionRole: reads the bamboohr, targets part")

    def test_a_function_reading_another_functions_part_is_flagged_and_so_is_losing_its_own(self):
        grants = dict(OWN_PARTS, DispatcherFunctionRole=read(SECRETS + "/*/bamboohr-*"))
        self.assert_flags(
            roles(grants),
            "DispatcherFunctionRole: reads the bamboohr part",
            "DispatcherFunctionRole: cannot read its targets part",
        )

    def test_a_role_outside_the_split_reading_a_part_is_flagged(self):
        grants = dict(OWN_PARTS, Other=read(SECRETS + "/*/webhook-??????"))
        self.assert_flags(roles(grants), "Other: reads the webhook part of directory secrets (allowed: none)")

    def test_a_pre_split_grant_reaches_no_part_only_while_it_requires_the_part_tag_absent(self):
        untagged = ', Condition: {"Null": {"aws:ResourceTag/bamboohr-sync:part": "true"}}'
        grants = dict(OWN_PARTS)
        grants["WebhookFunctionRole"] += "\n" + read(SECRETS + "/*", "PreSplit", untagged)
        code, out = run_check(roles(grants))
        self.assertEqual(code, 0, out)
        grants["WebhookFunctionRole"] += "\n" + read(SECRETS + "/*", "Tagged", ', Condition: {"Null": {"aws:ResourceTag/other": "true"}}')
        self.assert_flags(roles(grants), "WebhookFunctionRole: reads the bamboohr, targets part")

    def test_a_resource_policy_reader_list_that_disagrees_with_iam_is_flagged(self):
        extra = """
      AdminFunction:
        Type: AWS::Serverless::Function
        Properties:
          Role: !GetAtt AdminFunctionRole.Arn
          Environment:
            Variables:
              SECRET_READERS_WEBHOOK: !Join [",", [!GetAtt WebhookFunctionRole.Arn, !GetAtt DispatcherFunctionRole.Arn]]
              SECRET_READERS_TARGETS: !Join [",", [!GetAtt DispatcherFunctionRole.Arn, !GetAtt PollerFunctionRole.Arn, !GetAtt AdminFunctionRole.Arn]]
"""
        code, out = run_check(roles(OWN_PARTS, extra=extra))
        self.assertEqual(code, 1, out)
        self.assertIn("SECRET_READERS_WEBHOOK names ['DispatcherFunctionRole', 'WebhookFunctionRole']", out)
        self.assertNotIn("SECRET_READERS_TARGETS", out)

    def test_the_stacks_resource_policy_reader_lists_agree_with_iam(self):
        template = (HERE.parent / "infra" / "template.yaml").read_text()
        self.assertIn("SECRET_READERS_WEBHOOK", template)
        code, out = run_check(template)
        self.assertEqual(code, 0, out)

    def test_a_resource_from_a_parameter_that_could_be_a_wildcard_is_flagged(self):
        stmt = "- {Sid: Bus, Effect: Allow, Action: events:PutEvents, Resource: !Ref Buses}"
        self.assert_flags(
            roles({"R": stmt}, "Buses: {Type: CommaDelimitedList, Default: ''}"),
            "[Bus]: Resource from parameter Buses without an AllowedPattern",
        )
        self.assert_flags(
            roles({"R": stmt}, "Buses: {Type: CommaDelimitedList, Default: '', AllowedPattern: '^arn:.*$'}"),
            "[Bus]: Resource from parameter Buses, whose AllowedPattern admits 'arn:*'",
        )
        narrow = (
            "Buses: {Type: CommaDelimitedList, Default: '', AllowedPattern: "
            "'^(arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[A-Za-z0-9._/-]+)?$'}"
        )
        code, out = run_check(roles({"R": stmt}, narrow))
        self.assertEqual(code, 0, out)

    def test_the_stacks_customer_bus_parameter_admits_bus_arns_and_no_wildcard(self):
        loaded = check_iam.yaml.load(
            (HERE.parent / "infra" / "template.yaml").read_text(), Loader=check_iam.CfnLoader
        )
        pattern = loaded["Parameters"]["CustomerEventBusArns"]["AllowedPattern"]
        ok = ["", "arn:aws:events:eu-west-1:123456789012:event-bus/customer-bus"]
        for value in ok:
            self.assertRegex(value, pattern)
        for value in check_iam.WILDCARD_PROBES + ("arn:aws:events:eu-west-1:123456789012:rule/x",):
            self.assertIsNone(check_iam.re.fullmatch(pattern, value), value)

    def test_the_stacks_template_passes(self):
        code, out = run_check((HERE.parent / "infra" / "template.yaml").read_text())
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
