//! The pages, rendered here as HTML (no template engine, every value escaped): the
//! shell that opens a link, the page that connects a company, the page of a linked
//! company (employee count, what syncs, the last run and any held safeguard,
//! re-authenticate, disconnect), the page BambooHR's consent returns to, and the
//! pages that say a link no longer works.

use domain::{Directory, DirectoryState};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use ports::SetupLink;
use sync_engine::operate::setup_links::{self, csrf_token};
use sync_engine::operate::{self, SetupLinkProblem};
use sync_engine::EngineError;
use time::format_description::well_known::Rfc2822;

use crate::{OAuthProblem, Portal, PortalError};

/// Group sources the page offers (the directory's own choices are offered too).
const GROUP_FIELDS: [(&str, &str); 3] = [
    ("department", "Department"),
    ("division", "Division"),
    ("location", "Location"),
];

/// `s` with HTML's special characters escaped, for text and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(Body::Text(body))
        .expect("an HTML response is valid")
}

fn layout(title: &str, csrf: Option<&str>, main: &str) -> String {
    let csrf = csrf
        .map(|t| format!("\n<meta name=\"csrf-token\" content=\"{}\">", esc(t)))
        .unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">{csrf}
<title>{title} · BambooHR connection</title>
<link rel="stylesheet" href="/setup/assets/portal.css">
<script src="/setup/assets/portal.js" defer></script>
</head>
<body>
<header class="bar"><p>BambooHR connection</p></header>
<main id="main">
{main}
</main>
</body>
</html>
"#,
        title = esc(title),
    )
}

fn section(id: &str, hidden: bool, heading: &str, text: &str) -> String {
    format!(
        "<section class=\"card\" id=\"{id}\" data-outcome{}>\n<h1>{heading}</h1>\n{text}\n</section>\n",
        if hidden { " hidden" } else { "" }
    )
}

const ASK_AGAIN: &str =
    "<p>Nothing was changed. Ask the person who sent you the link for a new one.</p>";

fn closed_sections(show: Option<&SetupLinkProblem>) -> String {
    let shown = show.map(|p| match p {
        SetupLinkProblem::Expired => "link-expired",
        SetupLinkProblem::Revoked => "link-revoked",
        SetupLinkProblem::RateLimited { .. } => "link-limited",
        SetupLinkProblem::Invalid | SetupLinkProblem::NotFound(_) => "link-invalid",
    });
    let card = |id: &str, heading: &str, text: &str| section(id, shown != Some(id), heading, text);
    [
        card(
            "link-invalid",
            "This setup link does not work",
            &format!("<p>Check that you opened the whole link, exactly as you received it.</p>{ASK_AGAIN}"),
        ),
        card("link-expired", "This setup link has expired", ASK_AGAIN),
        card("link-revoked", "This setup link was revoked", ASK_AGAIN),
        card(
            "link-limited",
            "Too many attempts",
            "<p>This link was tried too often in the last minute. Wait a minute, then open it again.</p>",
        ),
        card(
            "link-offline",
            "The setup page could not be reached",
            "<p>Check your connection, then open the link again.</p>",
        ),
    ]
    .concat()
}

/// The page of an error answering a GET.
pub fn error_page(status: StatusCode, e: &PortalError) -> Response<Body> {
    let main = match e {
        PortalError::Engine(EngineError::SetupLink(p)) => closed_sections(Some(p)),
        PortalError::NotFound => section(
            "not-found",
            false,
            "Page not found",
            "<p>Open the setup link you received.</p>",
        ),
        other => section(
            "failed",
            false,
            "Something went wrong",
            &format!("<p>{}</p>", esc(&other.message())),
        ),
    };
    html(status, layout("Setup", None, &main))
}

/// `GET /setup/`: the shell that opens a link without a session; with one, the page
/// of the link's directory (never another's).
pub async fn page(portal: &Portal, cookie: Option<&str>) -> Result<Response<Body>, PortalError> {
    let engine = &portal.engine;
    let Some(cookie) = cookie else {
        return Ok(opening());
    };
    let (link, session) = match setup_links::session_link(engine, cookie).await {
        Ok(found) => found,
        // A session of a link that expired or was revoked since: say so.
        Err(EngineError::SetupLink(SetupLinkProblem::Invalid)) => return Ok(opening()),
        Err(e) => return Err(e.into()),
    };
    let csrf = csrf_token(&session);
    let directory = engine.store.get_directory(&link.directory_id).await?;
    let oauth = oauth_offered(portal).await;
    let main = match directory {
        Some(d) if d.state != DirectoryState::Revoked => linked(portal, &link, &d, oauth).await?,
        Some(d) => format!(
            "<h1>Connect your BambooHR company</h1>\n<p class=\"status\" role=\"status\">Disconnected: syncing stopped. You can connect again below.</p>\n{}",
            connect_cards(Some(&d.subdomain), oauth)
        ),
        None => format!(
            "<h1>Connect your BambooHR company</h1>\n<p>Connect your company's BambooHR account so your employee directory stays in sync. It takes a few minutes.</p>\n{}",
            connect_cards(None, oauth)
        ),
    };
    // The outcomes of opening another link from this tab (hidden until then).
    let main = format!("{main}{}", closed_sections(None));
    Ok(html(
        StatusCode::OK,
        layout("Connect BambooHR", Some(&csrf), &main),
    ))
}

/// Whether "Connect with BambooHR" is offered: the stack's OAuth client is set. A
/// secret store that cannot be read leaves the API-key form alone on the page.
async fn oauth_offered(portal: &Portal) -> bool {
    match sync_engine::operate::oauth_client(&portal.engine).await {
        Ok(client) => client.is_some(),
        Err(e) => {
            tracing::warn!(reason = %e, "the OAuth client could not be read; offering API keys only");
            false
        }
    }
}

/// `GET /setup/oauth/callback`: BambooHR sent the browser back. Denied consent (or any
/// `error`) is said here and changes nothing; with a code, the page's script finishes
/// (`POST /setup/oauth/finish`, which carries the session cookie) and shows the
/// outcome.
pub fn oauth_callback(
    query: Option<&lambda_http::aws_lambda_events::query_map::QueryMap>,
) -> Response<Body> {
    let error = query.and_then(|q| q.first("error").map(str::to_string));
    let back = "<p><a href=\"/setup/\">Back to the setup page</a></p>";
    let main = match error {
        Some(code) => {
            let problem = PortalError::OAuth(if code == "access_denied" {
                OAuthProblem::Denied
            } else {
                OAuthProblem::CodeRefused
            });
            // Only RFC 6749's codes are logged: the parameter is anyone's to set.
            let known = [
                "access_denied",
                "invalid_request",
                "unauthorized_client",
                "unsupported_response_type",
                "invalid_scope",
                "server_error",
                "temporarily_unavailable",
            ];
            let logged = known.iter().find(|k| **k == code).copied().unwrap_or("other");
            tracing::info!(error = logged, "BambooHR sent back no code");
            section(
                "oauth-failed",
                false,
                "BambooHR is not connected",
                &format!(
                    "<p class=\"error\" id=\"oauth-error\" role=\"alert\">{}</p>\n{back}",
                    esc(&problem.message())
                ),
            )
        }
        None => format!(
            "{}{}",
            section(
                "oauth-finishing",
                false,
                "Connecting to BambooHR…",
                "<p role=\"status\">Checking the sign-in with BambooHR. One moment.</p>\n<noscript><p class=\"error\">This page needs JavaScript to finish. Turn it on and reload.</p></noscript>",
            ),
            section(
                "oauth-failed",
                true,
                "BambooHR is not connected",
                &format!("<p class=\"error\" id=\"oauth-error\" role=\"alert\"></p>\n{back}"),
            ),
        ),
    };
    let main = format!("{main}{}", closed_sections(None));
    html(
        StatusCode::OK,
        layout("Connecting to BambooHR", None, &main),
    )
}

fn opening() -> Response<Body> {
    let main = format!(
        "{}{}",
        section(
            "opening",
            false,
            "Opening your setup link…",
            "<p role=\"status\">One moment.</p>\n<noscript><p class=\"error\">This page needs JavaScript to open your link. Turn it on and reload.</p></noscript>",
        ),
        closed_sections(None)
    );
    html(
        StatusCode::OK,
        layout("Opening your setup link", None, &main),
    )
}

const STEPS: &str = r#"<section class="card" aria-labelledby="steps-heading">
<h2 id="steps-heading">1. Create a BambooHR API key</h2>
<ol class="steps">
<li>We recommend a dedicated BambooHR user for this connection, with a <strong>read-only</strong> access level that can view employee fields. An API key can do whatever its user can do.</li>
<li>Sign in to BambooHR as that user, open the menu under your name (top right) and choose <strong>API Keys</strong>.</li>
<li>Choose <strong>Add New Key</strong>, name it (for example <em>Directory sync</em>) and copy the key: BambooHR shows it only once.</li>
<li>Find your <strong>subdomain</strong>: it is the part of your BambooHR address before <code>.bamboohr.com</code>. For <code>https://acme.bamboohr.com</code> it is <code>acme</code>.</li>
</ol>
</section>
"#;

fn connect_form(subdomain: Option<&str>, button: &str, oauth: bool) -> String {
    // With the stack's OAuth client set: sign in at BambooHR instead of pasting a key
    // (after the key's button, so the keyboard path through the form stays the same).
    let oauth = if oauth {
        r#"
<div class="alternative">
<p class="hint" id="oauth-hint">Or sign in to BambooHR as an administrator and allow access: no API key needed.</p>
<button type="button" class="secondary" id="oauth-connect" aria-describedby="oauth-hint">Connect with BambooHR</button>
</div>"#
    } else {
        ""
    };
    format!(
        r#"<form data-action="connect" data-busy="Checking with BambooHR…" data-done="Linked." novalidate>
<label for="subdomain">BambooHR subdomain</label>
<p class="hint" id="subdomain-hint">For acme.bamboohr.com, enter <code>acme</code>.</p>
<input type="text" id="subdomain" name="subdomain" value="{sub}" required autocomplete="off" autocapitalize="none" spellcheck="false" inputmode="url" aria-describedby="subdomain-hint subdomain-error">
<p class="error" id="subdomain-error" data-error-for="subdomain" role="alert" hidden></p>
<label for="apiKey">API key</label>
<p class="hint" id="apiKey-hint">It is checked with BambooHR at once, then kept encrypted. No one can view it again, here or anywhere.</p>
<input type="password" id="apiKey" name="apiKey" required autocomplete="off" spellcheck="false" aria-describedby="apiKey-hint apiKey-error">
<p class="error" id="apiKey-error" data-error-for="apiKey" role="alert" hidden></p>
<p class="error" data-error-for="form" role="alert" hidden></p>
<button type="submit">{button}</button>{oauth}
<p class="status" data-role="status" role="status" aria-live="polite"></p>
</form>"#,
        sub = esc(subdomain.unwrap_or_default()),
    )
}

fn connect_cards(subdomain: Option<&str>, oauth: bool) -> String {
    format!(
        "{STEPS}<section class=\"card\" aria-labelledby=\"connect-heading\">\n<h2 id=\"connect-heading\">2. Connect</h2>\n{}\n</section>\n",
        connect_form(subdomain, "Connect", oauth)
    )
}

fn when(t: time::OffsetDateTime) -> String {
    t.format(&Rfc2822).unwrap_or_default()
}

fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn linked(
    portal: &Portal,
    link: &SetupLink,
    d: &Directory,
    oauth: bool,
) -> Result<String, PortalError> {
    let engine = &portal.engine;
    let status = operate::status(engine, &d.id, None).await?;
    let employees = match link.linked_employees {
        Some(n) => format!("{n} in BambooHR"),
        None => format!("{} synced", status.users.values().sum::<u64>()),
    };
    let mut out = format!(
        r#"<h1>BambooHR is connected</h1>
<section class="card" aria-labelledby="linked-heading">
<h2 id="linked-heading"><span class="badge" id="linked">Linked</span> {sub}.bamboohr.com</h2>
<dl class="facts">
<dt>Employees</dt><dd id="employee-count">{employees}</dd>
<dt>Connected</dt><dd>{connected}</dd>
<dt>Syncing</dt><dd>{state}</dd>
</dl>
</section>
"#,
        sub = esc(&d.subdomain),
        employees = esc(&employees),
        connected = d.connected_at.map(when).unwrap_or_default(),
        state = esc(&name_of(&d.state)),
    );
    out.push_str(&last_run(&status));
    out.push_str(&choices(portal, d).await);
    out.push_str(&format!(
        r#"<section class="card" aria-labelledby="connection-heading">
<h2 id="connection-heading">Connection</h2>
<p>Replace the API key (for example after rotating it in BambooHR), or disconnect to stop syncing.</p>
<button type="button" class="secondary" id="reauthenticate" aria-expanded="false" aria-controls="reauth">Re-authenticate</button>
<div id="reauth" hidden>
{form}
</div>
<form data-action="disconnect" data-busy="Disconnecting…" data-done="Disconnected." novalidate>
<label><input type="checkbox" name="confirm" id="confirm-disconnect"> I understand that syncing stops</label>
<p class="error" data-error-for="form" role="alert" hidden></p>
<button type="submit" class="danger">Disconnect</button>
<p class="status" data-role="status" role="status" aria-live="polite"></p>
</form>
</section>
"#,
        form = connect_form(Some(&d.subdomain), "Save new key", oauth),
    ));
    Ok(out)
}

fn last_run(status: &operate::Status) -> String {
    let mut out = String::from(
        "<section class=\"card\" aria-labelledby=\"run-heading\" id=\"last-run\">\n<h2 id=\"run-heading\">Last sync</h2>\n",
    );
    match &status.last_run {
        None => {
            out.push_str("<p>No sync has run yet. The first one starts within a few minutes.</p>\n")
        }
        Some(run) => {
            let c = &run.counts;
            out.push_str(&format!(
                "<dl class=\"facts\">\n<dt>Started</dt><dd>{}</dd>\n<dt>Result</dt><dd>{}</dd>\n<dt>Employees seen</dt><dd>{}</dd>\n<dt>Changes</dt><dd>{} created, {} updated, {} deactivated, {} deleted, {} unchanged</dd>\n</dl>\n",
                when(run.started_at),
                esc(&name_of(&run.status)),
                c.seen, c.created, c.updated, c.deactivated, c.deleted, c.unchanged
            ));
        }
    }
    if let Some(hold) = &status.hold {
        out.push_str(&format!(
            "<div class=\"card held\" id=\"hold\" role=\"note\"><p><strong>Held for review.</strong> A sync on {} would have deactivated {} and deleted {} of {} active users, more than the safeguard allows. Nothing was changed; the team that runs this connection reviews it.</p></div>\n",
            when(hold.at), hold.would_deactivate, hold.would_delete, hold.active_before
        ));
    }
    out.push_str("</section>\n");
    out
}

async fn choices(portal: &Portal, d: &Directory) -> String {
    let chosen_groups: Vec<&str> = d.group_sources.iter().map(|g| g.field.as_str()).collect();
    let mut groups: Vec<(String, String)> = GROUP_FIELDS
        .iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .collect();
    for g in &chosen_groups {
        if !groups.iter().any(|(v, _)| v == g) {
            groups.push((g.to_string(), g.to_string()));
        }
    }
    let boxes = |name: &str, items: &[(String, String)], chosen: &[&str]| -> String {
        items
            .iter()
            .enumerate()
            .map(|(i, (value, label))| {
                format!(
                    "<label for=\"{name}-{i}\"><input type=\"checkbox\" data-list id=\"{name}-{i}\" name=\"{name}\" value=\"{v}\"{c}> {l}</label>\n",
                    v = esc(value),
                    l = esc(label),
                    c = if chosen.contains(&value.as_str()) { " checked" } else { "" },
                )
            })
            .collect()
    };
    let extra: Vec<&str> = d.extra_fields.iter().map(String::as_str).collect();
    let fields = match sync_engine::source::connect::company_fields_read_only(&portal.engine, d)
        .await
    {
        Ok(list) => {
            let mut items: Vec<(String, String)> = list
                .iter()
                .filter(|f| !f.deprecated)
                .filter_map(|f| {
                    f.alias
                        .as_ref()
                        .map(|a| (a.clone(), format!("{} ({})", f.name, f.field_type)))
                })
                .collect();
            items.sort_by_key(|item| item.1.to_lowercase());
            items.dedup_by(|a, b| a.0 == b.0);
            format!(
                "<p class=\"hint\" id=\"fields-hint\">The fields BambooHR lets this API key see ({}). Tick any to send beyond the standard profile.</p>\n{}",
                items.len(),
                boxes("extraFields", &items, &extra)
            )
        }
        Err(e) => {
            tracing::warn!(directory_id = %d.id, reason = %e, "company fields unavailable for the setup page");
            "<p class=\"hint\">BambooHR's field list could not be read just now. Reload the page to try again.</p>\n".to_string()
        }
    };
    format!(
        r#"<section class="card" aria-labelledby="choices-heading">
<h2 id="choices-heading">What syncs</h2>
<form data-action="settings" data-busy="Saving…" data-done="Saved." novalidate>
<fieldset>
<legend>Groups</legend>
<p class="hint">Employees are put into groups by these fields.</p>
{groups}</fieldset>
<fieldset class="fields" aria-describedby="fields-hint">
<legend>Extra fields</legend>
{fields}</fieldset>
<p class="error" data-error-for="form" role="alert" hidden></p>
<button type="submit">Save choices</button>
<p class="status" data-role="status" role="status" aria-live="polite"></p>
</form>
</section>
"#,
        groups = boxes("groupSources", &groups, &chosen_groups),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_for_text_and_attributes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_shell_has_no_inline_script_or_style() {
        let page = layout("t", Some("c"), "<p>x</p>");
        assert!(!page.contains("<script>"));
        assert!(!page.contains("style="));
        assert!(page.contains("name=\"viewport\""));
    }
}
