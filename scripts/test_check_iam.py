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

    def test_putting_and_querying_the_audit_table_pass(self):
        code, out = run_check(
            function("- {Sid: Audit, Effect: Allow, Action: [dynamodb:PutItem, dynamodb:Query], Resource: !GetAtt AuditTable.Arn}")
        )
        self.assertEqual(code, 0, out)

    def test_the_stacks_template_passes(self):
        code, out = run_check((HERE.parent / "infra" / "template.yaml").read_text())
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
