"""Verifies captured deliveries with the official Standard Webhooks library (not our
own code), once per secret.

Reads {"deliveries": [{"headers": {...}, "body": "..."}], "secrets": ["whsec_..."]}
on stdin; prints a JSON list with, for each delivery, a list of booleans: whether
`standardwebhooks.Webhook(secret).verify` accepted it, for each secret in order.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

case = json.load(sys.stdin)
results = []
for delivery in case["deliveries"]:
    row = []
    for secret in case["secrets"]:
        try:
            Webhook(secret).verify(delivery["body"], delivery["headers"])
            row.append(True)
        except WebhookVerificationError:
            row.append(False)
    results.append(row)
print(json.dumps(results))
