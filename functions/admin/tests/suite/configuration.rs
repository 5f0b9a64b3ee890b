//! What the configuration routes do beyond their shape: a target URL change is
//! audited before and after without its secret, invalid settings are refused naming
//! the field with nothing changed, an app webhook's signing secrets rotate with an
//! overlap the official Standard Webhooks library accepts, the BambooHR webhook
//! monitors the fields targets use and its keys are a list shown only as ids, writes
//! without an IAM caller change nothing, and lists page to their end.

use std::io::Write;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::common::{
    bamboohr_get, get, harness, post, post_anonymous, walk, Capture, Captured, Harness, API_KEY,
    CALLER, WEBHOOK_BASE_URL, WHSEC,
};

/// A Standard Webhooks secret made of `byte` repeated.
fn whsec(byte: u8) -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    )
}

/// The key id the API shows for `key`.
fn key_id(key: &str) -> String {
    ports::key_id(&SecretString::from(key.to_string()))
}

/// The newest audit entries of the harness's directory, newest first, through the API.
async fn audit(h: &Harness) -> Vec<Value> {
    let (status, body) = get(&h.api, "/admin/directories/acme/audit", &[("limit", "500")]).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Which of `secrets` the official `standardwebhooks` library accepts each delivery with.
fn verify_with(deliveries: &[Captured], secrets: &[&str]) -> Vec<Vec<bool>> {
    let input = json!({
        "deliveries": deliveries
            .iter()
            .map(|d| json!({"headers": d.headers, "body": d.body}))
            .collect::<Vec<_>>(),
        "secrets": secrets,
    });
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/suite/verify_standard_webhooks.py"
    );
    let mut child = std::process::Command::new(test_peers::python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the verifier starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_url_change_is_audited_with_the_url_before_and_after_and_no_secret() {
    let h = harness().await;
    let (_, before) = get(&h.api, "/admin/directories/acme/targets/app", &[]).await;
    let old_url = before["url"].as_str().unwrap().to_string();
    let new_url = "https://app.example.test/hooks/bamboohr";

    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/targets/app",
        Some(json!({"kind": "app_webhook", "url": new_url})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["target"]["url"], new_url);

    let entry = audit(&h).await.remove(0);
    assert_eq!(entry["action"], "target_change");
    assert_eq!(entry["actor"], CALLER);
    assert_eq!(entry["details"]["target"], "app");
    assert_eq!(entry["details"]["change"], "updated");
    assert_eq!(entry["details"]["before"]["url"], json!(old_url));
    assert_eq!(entry["details"]["after"]["url"], new_url);
    assert_eq!(entry["details"]["secretsReplaced"], false);

    // Replaced again, with a new signing secret: the entry says so, and carries no
    // secret, old or new, in any form.
    let secret = whsec(9);
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/targets/app",
        Some(json!({"kind": "app_webhook", "url": old_url, "secret": secret})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entry = audit(&h).await.remove(0);
    assert_eq!(entry["details"]["before"]["url"], new_url);
    assert_eq!(entry["details"]["after"]["url"], json!(old_url));
    assert_eq!(entry["details"]["secretsReplaced"], true);
    let text = entry.to_string();
    for s in [WHSEC, secret.as_str()] {
        let bare = s.trim_start_matches("whsec_");
        assert!(!text.contains(bare), "no secret in the entry: {text}");
    }
    assert!(!body
        .to_string()
        .contains(secret.trim_start_matches("whsec_")));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upsert_targets_gate_exit_choice_defaults_to_deactivate_and_its_change_is_audited() {
    let h = harness().await;
    let url = "https://lms.example.test/api/users";
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/targets",
        Some(json!({"id": "lms", "kind": "http_upsert", "url": url})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["target"]["gate_exit"], "deactivate");

    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/targets/lms",
        Some(json!({"kind": "http_upsert", "url": url, "gateExit": "leave"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["target"]["gate_exit"], "leave");
    let entry = audit(&h).await.remove(0);
    assert_eq!(entry["action"], "target_change");
    assert_eq!(entry["details"]["before"]["gate_exit"], "deactivate");
    assert_eq!(entry["details"]["after"]["gate_exit"], "leave");

    let entries = audit(&h).await.len();
    for bad in [
        json!({"kind": "http_upsert", "url": url, "gateExit": "archive"}),
        json!({"kind": "app_webhook", "url": url, "gateExit": "leave"}),
    ] {
        let (status, body) = post(&h.api, "/admin/directories/acme/targets/lms", Some(bad)).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.to_string().contains("gateExit") || body.to_string().contains("archive"),
            "{body}"
        );
    }
    assert_eq!(audit(&h).await.len(), entries, "nothing refused is audited");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_settings_are_refused_with_a_400_naming_the_field_and_nothing_changes() {
    let h = harness().await;
    let store = &h.api.engine.store;
    let before = store.get_directory(&h.id).await.unwrap().unwrap();
    let entries_before = audit(&h).await.len();
    let cases = [
        (json!({"safeguardMaxShare": 1.5}), "max share"),
        (
            json!({"timeZone": "Mars/Olympus_Mons"}),
            "Mars/Olympus_Mons",
        ),
        (json!({"timeZone": "Mars/Olympus_Mons"}), "time zone"),
        (json!({"incrementalEveryMinutes": 0}), "incremental"),
        (json!({"fullEveryHours": 0}), "full"),
        (json!({"staleAfterMinutes": 0}), "stale"),
        (json!({"preStartDays": 366}), "pre-start days"),
        (json!({"safeguardWindowMinutes": 0}), "webhook window"),
        (json!({"safeguardWindowMinutes": 1441}), "webhook window"),
        // A field the company's meta/fields does not list, wherever it is named.
        (
            json!({"extraFields": ["customNoSuchField"]}),
            "customNoSuchField",
        ),
        (
            json!({"extraFields": ["customNoSuchField"]}),
            "extra fields",
        ),
        (
            json!({"customFieldMap": {"customNoSuchField": "noSuch"}}),
            "customNoSuchField",
        ),
        (json!({"groupSources": ["noSuchField"]}), "noSuchField"),
        // The valid part of a refused body is not applied either.
        (
            json!({"incrementalEveryMinutes": 5, "safeguardMaxShare": -0.1}),
            "max share",
        ),
        (
            json!({"incrementalEveryMinutes": 5, "extraFields": ["customNoSuchField"]}),
            "customNoSuchField",
        ),
        // Types and unknown settings are refused by name too.
        (json!({"safeguardMaxShare": "half"}), "safeguardMaxShare"),
        (
            json!({"incrementalEveryMinutes": -1}),
            "incrementalEveryMinutes",
        ),
        (json!({"pollEveryMinutes": 5}), "pollEveryMinutes"),
    ];
    for (body, names) in cases {
        let (status, answer) = post(
            &h.api,
            "/admin/directories/acme/settings",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(names),
            "{body}: {message:?} names {names:?}"
        );
        // A value the engine refused names its request field (serde's refusals name
        // it in the message: a wrong type, an unknown setting).
        if let Some(field) = answer["error"]["field"].as_str() {
            let given = body.as_object().unwrap();
            assert!(given.contains_key(field), "{body}: field {field:?}");
        }
    }
    let (_, share) = post(
        &h.api,
        "/admin/directories/acme/settings",
        Some(json!({"safeguardMaxShare": 1.5})),
    )
    .await;
    assert_eq!(share["error"]["field"], "safeguardMaxShare", "{share}");
    let after = store.get_directory(&h.id).await.unwrap().unwrap();
    assert_eq!(after, before, "the directory is as it was");
    assert_eq!(audit(&h).await.len(), entries_before, "nothing audited");

    // The same settings, valid, are taken (the custom field is the simulator's).
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/settings",
        Some(
            json!({"safeguardMaxShare": 0.5, "safeguardWindowMinutes": 90,
                    "timeZone": "Europe/Berlin",
                    "incrementalEveryMinutes": 5,
                    "extraFields": [bamboohr_simulator::LITMOS_ACCESS]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let changed = &body["changed"];
    assert_eq!(changed["safeguard"]["before"]["maxShare"], 0.2);
    assert_eq!(changed["safeguard"]["after"]["maxShare"], 0.5);
    assert_eq!(changed["safeguard"]["before"]["windowMinutes"], 60);
    assert_eq!(changed["safeguard"]["after"]["windowMinutes"], 90);
    assert_eq!(changed["timeZone"]["after"], "Europe/Berlin");
    assert_eq!(changed["incrementalEveryMinutes"]["before"], 30);
    assert_eq!(changed["incrementalEveryMinutes"]["after"], 5);
    assert_eq!(
        body["monitorFields"]["result"], "unchanged",
        "no webhook yet"
    );
    let entry = audit(&h).await.remove(0);
    assert_eq!(entry["action"], "settings_change");
    assert_eq!(entry["details"]["changed"], *changed);
}

#[tokio::test(flavor = "multi_thread")]
async fn during_a_signing_secret_overlap_the_standard_webhooks_library_verifies_with_either_secret()
{
    let h = harness().await;
    let app = Capture::start().await;
    let (old, new, stranger) = (whsec(1), whsec(2), whsec(3));
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/targets",
        Some(json!({"id": "signed", "kind": "app_webhook", "url": app.url, "secret": old})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secrets = "/admin/directories/acme/targets/signed/secrets";
    let (_, listed) = get(&h.api, secrets, &[]).await;
    assert_eq!(listed["items"][0]["id"], key_id(&old));

    // The successor is added: both sign.
    let (status, body) = post(&h.api, secrets, Some(json!({"secret": new}))).await;
    assert_eq!(status, 201, "{body}");
    let ids: Vec<&str> = body["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [key_id(&new), key_id(&old)], "newest first");
    assert!(body["secrets"][0]["addedAt"].is_i64());
    let users = h.api.engine.store.list_users(&h.id).await.unwrap();
    let employee = users[0].employee_id.to_string();
    let replay = json!({"target": "signed", "employeeId": employee});
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/replay",
        Some(replay.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["delivered"], 1, "{body}");
    let during = app.received();
    assert_eq!(during.len(), 1);
    assert_eq!(
        verify_with(&during, &[&old, &new, &stranger]),
        [[true, true, false]],
        "a receiver with either secret verifies the delivery; another secret does not"
    );

    // The old one is retired once receivers have switched: only the new one verifies.
    let (status, body) = post(&h.api, &format!("{secrets}/{}/retire", key_id(&old)), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["secrets"].as_array().unwrap().len(), 1);
    assert_eq!(body["secrets"][0]["id"], key_id(&new));
    let (status, body) = post(&h.api, "/admin/directories/acme/replay", Some(replay)).await;
    assert_eq!(status, 200, "{body}");
    let after = app.received();
    assert_eq!(after.len(), 2);
    assert_eq!(verify_with(&after[1..], &[&old, &new]), [[false, true]]);

    // The last one cannot be retired: the target would send unsigned deliveries.
    let (status, body) = post(&h.api, &format!("{secrets}/{}/retire", key_id(&new)), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("only"));
    let (_, listed) = get(&h.api, secrets, &[]).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Each change was audited by key id; no secret appears in any entry.
    let entries = audit(&h).await;
    let keys: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "key_change")
        .collect();
    assert_eq!(keys.len(), 2, "added, retired (the refusal left none)");
    assert_eq!(keys[1]["details"]["added"], key_id(&new));
    assert_eq!(keys[0]["details"]["retired"], json!([key_id(&old)]));
    let text = Value::Array(entries).to_string();
    for s in [&old, &new] {
        assert!(!text.contains(s.trim_start_matches("whsec_")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_monitors_a_gate_field_within_bamboohrs_list_and_its_keys_are_shown_only_as_ids(
) {
    let h = harness().await;
    let mut answers: Vec<Value> = Vec::new();
    let allowed = bamboohr_get(&h.sim_url, "/api/v1/webhooks/monitor_fields").await;
    let allowed: Vec<String> = allowed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| [f["id"].as_str(), f["alias"].as_str()])
        .flatten()
        .map(str::to_string)
        .collect();
    let gate = bamboohr_simulator::LITMOS_ACCESS;

    // Registered at the stack's own URL: one key, shown by id.
    let (status, registered) = post(&h.api, "/admin/directories/acme/webhook", None).await;
    assert_eq!(status, 200, "{registered}");
    assert_eq!(
        registered["webhook"]["url"],
        format!("{WEBHOOK_BASE_URL}/acme")
    );
    let first_fields = registered["webhook"]["monitorFields"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        !first_fields.contains(&json!(gate)),
        "the gate is not used yet"
    );
    let secret_name = h
        .api
        .engine
        .store
        .get_directory(&h.id)
        .await
        .unwrap()
        .unwrap()
        .secret_name;
    let stored = h.api.engine.secrets.get(&secret_name).await.unwrap();
    assert_eq!(stored.webhook_keys.len(), 1);
    let registered_key = stored.webhook_keys[0].expose_secret().to_string();
    assert_eq!(registered["keyId"], key_id(&registered_key));
    answers.push(registered.clone());

    // The gate checkbox becomes a custom attribute, and a Litmos-style target filters on
    // it: the webhook follows and monitors the field the filter comes from.
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/settings",
        Some(json!({"customFieldMap": {gate: "litmosAccess"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    answers.push(body.clone());
    let (status, body) = post(
        &h.api,
        "/admin/directories/acme/targets",
        Some(json!({"id": "lms", "kind": "http_upsert",
                    "url": "https://lms.example.test/api/users",
                    "filter": {"fieldIn": {"litmosAccess": ["Yes"]}}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    answers.push(body.clone());
    let d = h
        .api
        .engine
        .store
        .get_directory(&h.id)
        .await
        .unwrap()
        .unwrap();
    let monitored = d.webhook.as_ref().unwrap().monitor_fields.clone();
    assert!(monitored.contains(&gate.to_string()), "{monitored:?}");
    for f in &monitored {
        assert!(
            allowed.contains(f),
            "{f} is one BambooHR allows: {allowed:?}"
        );
    }
    // And BambooHR has it so.
    let webhook_id = registered["webhook"]["id"].as_str().unwrap();
    let at_bamboohr = bamboohr_get(&h.sim_url, &format!("/api/v1/webhooks/{webhook_id}")).await;
    assert_eq!(at_bamboohr["monitorFields"], json!(monitored));

    // Registered again, the new webhook monitors it from the start.
    let (status, again) = post(&h.api, "/admin/directories/acme/webhook", None).await;
    assert_eq!(status, 200, "{again}");
    assert!(again["webhook"]["monitorFields"]
        .as_array()
        .unwrap()
        .contains(&json!(gate)));
    assert_eq!(again["replaced"]["id"], webhook_id);
    answers.push(again.clone());
    let keys_path = "/admin/directories/acme/webhook-keys";
    let (_, listed) = get(&h.api, keys_path, &[]).await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            again["keyId"].as_str().unwrap(),
            key_id(&registered_key).as_str()
        ]
    );
    answers.push(listed.clone());
    let stored = h.api.engine.secrets.get(&secret_name).await.unwrap();
    let second_key = stored.webhook_keys[0].expose_secret().to_string();

    // A hand-made webhook's key is imported as the newest; the oldest is retired.
    let hand_made = "hand-made-webhook-private-key-0123456789abcdef";
    let (status, body) = post(&h.api, keys_path, Some(json!({"key": hand_made}))).await;
    assert_eq!(status, 201, "{body}");
    let ids: Vec<&str> = body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [key_id(hand_made), key_id(&second_key)],
        "the first key retired"
    );
    answers.push(body.clone());
    let (status, body) = post(&h.api, keys_path, Some(json!({"key": hand_made}))).await;
    assert_eq!(status, 400, "an active key again: {body}");
    answers.push(body.clone());
    let (status, body) = post(&h.api, keys_path, Some(json!({"key": "short"}))).await;
    assert_eq!(status, 400, "{body}");
    answers.push(body.clone());

    // Retired by id.
    let (status, body) = post(
        &h.api,
        &format!("{keys_path}/{}/retire", key_id(&second_key)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["keys"],
        json!([{"id": key_id(hand_made), "addedAt": body["keys"][0]["addedAt"], "position": 0}])
    );
    answers.push(body.clone());
    let (status, body) = post(
        &h.api,
        &format!("{keys_path}/{}/retire", key_id(&second_key)),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    answers.push(body);
    let stored = h.api.engine.secrets.get(&secret_name).await.unwrap();
    let left: Vec<&str> = stored
        .webhook_keys
        .iter()
        .map(|k| k.expose_secret())
        .collect();
    assert_eq!(left, [hand_made]);

    // Keys appear only as ids: in no answer, directory or audit entry.
    let (_, directory) = get(&h.api, "/admin/directories/acme", &[]).await;
    answers.push(directory);
    answers.push(json!(audit(&h).await));
    let text = Value::Array(answers).to_string();
    for key in [registered_key.as_str(), second_key.as_str(), hand_made] {
        assert!(!text.contains(key), "a key value in an answer");
    }
    let entries = audit(&h).await;
    assert!(entries.iter().any(|e| e["action"] == "webhook_change"
        && e["details"]["monitorFields"]["after"]
            .as_array()
            .is_some_and(|f| f.contains(&json!(gate)))));
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_without_an_iam_caller_are_refused_and_change_nothing() {
    let h = harness().await;
    let store = &h.api.engine.store;
    let directory = store.get_directory(&h.id).await.unwrap().unwrap();
    let secrets = h
        .api
        .engine
        .secrets
        .get(&directory.secret_name)
        .await
        .unwrap();
    let entries = audit(&h).await;
    let app_secret = key_id(WHSEC);
    let d = "/admin/directories/acme";
    let writes = [
        (
            "/admin/directories".to_string(),
            Some(
                json!({"id": "beta", "subdomain": "acme", "baseUrl": h.sim_url,
                        "apiKey": API_KEY, "registerWebhook": true}),
            ),
        ),
        (format!("{d}/credentials"), Some(json!({"apiKey": API_KEY}))),
        (
            format!("{d}/settings"),
            Some(json!({"incrementalEveryMinutes": 5})),
        ),
        (format!("{d}/revoke"), None),
        (format!("{d}/webhook"), None),
        (
            format!("{d}/webhook-keys"),
            Some(json!({"key": "hand-made-webhook-private-key-0123456789"})),
        ),
        (format!("{d}/webhook-keys/key_000000000000/retire"), None),
        (
            format!("{d}/targets"),
            Some(json!({"id": "bus", "kind": "event_bridge",
                        "busArn": "arn:aws:events:us-east-1:123456789012:event-bus/x"})),
        ),
        (
            format!("{d}/targets/app"),
            Some(json!({"kind": "app_webhook", "url": "https://elsewhere.example.test/"})),
        ),
        (format!("{d}/targets/app/remove"), None),
        (format!("{d}/targets/app/test"), None),
        (
            format!("{d}/targets/app/secrets"),
            Some(json!({"secret": whsec(4)})),
        ),
        (format!("{d}/targets/app/secrets/{app_secret}/retire"), None),
        (format!("{d}/sync"), None),
        (format!("{d}/pause"), None),
        (format!("{d}/hold/release"), None),
        (format!("{d}/replay"), Some(json!({"target": "app"}))),
        ("/admin/dead-letters/redrive".to_string(), None),
    ];
    for (path, body) in writes {
        let (status, answer) = post_anonymous(&h.api, &path, body).await;
        assert_eq!(status, 403, "POST {path}: {answer}");
        assert_eq!(answer["error"]["code"], "forbidden");
    }
    assert_eq!(
        store.get_directory(&h.id).await.unwrap().unwrap(),
        directory
    );
    assert!(store
        .get_directory(&domain::DirectoryId::parse("beta").unwrap())
        .await
        .unwrap()
        .is_none());
    let after = h
        .api
        .engine
        .secrets
        .get(&directory.secret_name)
        .await
        .unwrap();
    assert_eq!(
        after.to_json().expose_secret(),
        secrets.to_json().expose_secret()
    );
    assert_eq!(audit(&h).await, entries, "nothing audited");
    let webhooks = bamboohr_get(&h.sim_url, "/api/v1/webhooks").await;
    assert_eq!(
        webhooks["webhooks"],
        json!([]),
        "nothing registered at BambooHR"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_page_with_limit_and_next_cursor_to_their_end() {
    let h = harness().await;
    for id in ["beta", "gamma"] {
        let (status, body) = post(
            &h.api,
            "/admin/directories",
            Some(json!({"id": id, "subdomain": "acme", "baseUrl": h.sim_url, "apiKey": API_KEY})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    for id in ["bus-1", "bus-2"] {
        let (status, body) = post(
            &h.api,
            "/admin/directories/acme/targets",
            Some(json!({"id": id, "kind": "event_bridge",
                        "busArn": format!("arn:aws:events:us-east-1:123456789012:event-bus/{id}")})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let ids = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };

    let (items, pages) = walk(&h.api, "/admin/directories", 1).await;
    assert_eq!(ids(&items), ["acme", "beta", "gamma"]);
    assert_eq!(pages, 3, "the last page says there is no next");
    let (items, pages) = walk(&h.api, "/admin/directories", 2).await;
    assert_eq!(ids(&items), ["acme", "beta", "gamma"]);
    assert_eq!(pages, 2);
    let targets = "/admin/directories/acme/targets";
    let (items, pages) = walk(&h.api, targets, 1).await;
    assert_eq!(ids(&items), ["app", "bus-1", "bus-2"]);
    assert_eq!(pages, 3);
    let (items, pages) = walk(&h.api, "/admin/directories/acme/users", 2).await;
    assert_eq!(items.len(), 5);
    assert_eq!(pages, 3);

    // A page without a limit has the route's default; a bad limit or cursor is refused.
    let (_, all) = get(&h.api, targets, &[]).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert!(all["nextCursor"].is_null());
    for query in [
        [("limit", "0")],
        [("limit", "501")],
        [("cursor", "***")],
        [("cursor", "bm9wZQ")],
    ] {
        let (status, body) = get(&h.api, targets, &query).await;
        assert_eq!(status, 400, "{query:?}: {body}");
    }

    // A cursor whose item was removed is refused rather than silently skipping.
    let (_, first) = get(&h.api, targets, &[("limit", "2")]).await;
    let cursor = first["nextCursor"].as_str().unwrap().to_string();
    let (status, body) = post(&h.api, &format!("{targets}/bus-1/remove"), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&h.api, targets, &[("limit", "2"), ("cursor", &cursor)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("cursor"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_read_from_the_api_can_be_sent_back_to_replace_itself() {
    let h = harness().await;
    let targets = "/admin/directories/acme/targets";
    for body in [
        json!({"id": "scim", "kind": "scim", "baseUrl": "https://scim.example.test/v2",
               "scim": {"pushGroups": true, "userName": "full_email"},
               "filter": {"states": ["active"], "requireWorkEmail": true},
               "secret": "scim-bearer-token"}),
        json!({"id": "bus", "kind": "event_bridge",
               "busArn": "arn:aws:events:us-east-1:123456789012:event-bus/customer"}),
    ] {
        let (status, added) = post(&h.api, targets, Some(body)).await;
        assert_eq!(status, 201, "{added}");
        let id = added["target"]["id"].as_str().unwrap().to_string();
        let (status, shown) = get(&h.api, &format!("{targets}/{id}"), &[]).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown, added["target"]);
        let (status, replaced) =
            post(&h.api, &format!("{targets}/{id}"), Some(shown.clone())).await;
        assert_eq!(status, 200, "{id}: {replaced}");
        assert_eq!(replaced["target"], shown, "unchanged");
    }
    let d = h
        .api
        .engine
        .store
        .get_directory(&h.id)
        .await
        .unwrap()
        .unwrap();
    let scim = d.target(&domain::TargetId::parse("scim").unwrap()).unwrap();
    let domain::TargetKind::Scim { scim, .. } = &scim.kind else {
        panic!("{scim:?}")
    };
    assert!(scim.push_groups, "the options given were kept");
    assert_eq!(scim.user_name, domain::ScimUserName::FullEmail);
}
