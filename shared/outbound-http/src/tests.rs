//! The policy's URL checks, the address classes, redirects and size caps, against a
//! real local HTTP server.

use super::*;

#[test]
fn a_deployed_stack_calls_https_only() {
    let p = Policy::deployed(true);
    assert!(p.check("https://api.example.com/hook").is_ok());
    assert_eq!(
        p.check("http://api.example.com/hook"),
        Err(Refused::PlainHttp)
    );
    assert_eq!(
        p.check("http://127.0.0.1:8080/hook"),
        Err(Refused::PlainHttp)
    );
    assert_eq!(p.check("ftp://example.com/"), Err(Refused::Invalid));
    assert_eq!(p.check("not a url"), Err(Refused::Invalid));
}

#[test]
fn the_local_stack_allows_plain_http_to_loopback_only() {
    let p = Policy::local();
    assert!(p.check("http://127.0.0.1:8080/hook").is_ok());
    assert!(p.check("http://localhost:8080/hook").is_ok());
    assert!(p.check("http://[::1]:8080/hook").is_ok());
    assert_eq!(p.check("http://example.com/hook"), Err(Refused::PlainHttp));
    assert_eq!(p.check("http://10.0.0.5/hook"), Err(Refused::PlainHttp));
}

#[test]
fn private_loopback_and_link_local_literals_are_refused_when_blocked() {
    let p = Policy::deployed(true);
    for url in [
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://127.0.0.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://0.0.0.0/",
        "https://[::1]/",
        "https://[fd00::1]/",
        "https://[fe80::1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://localhost/",
    ] {
        assert!(
            matches!(p.check(url), Err(Refused::PrivateAddress(_))),
            "{url}"
        );
    }
    assert!(p.check("https://93.184.216.34/").is_ok());
    assert!(Policy::deployed(false).check("https://10.1.2.3/").is_ok());
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_refused_by_the_resolver() {
    let client = client_builder(Policy::deployed(true)).build().unwrap();
    let err = client.get("https://localhost:9/").send().await.unwrap_err();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(text.contains("private"), "{text}");
}

async fn server() -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/moved",
            get(|| async {
                (
                    axum::http::StatusCode::PERMANENT_REDIRECT,
                    [("location", "http://127.0.0.1:9/elsewhere")],
                )
            }),
        )
        .route("/big", get(|| async { vec![b'x'; 4096] }))
        .route("/small", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_named_as_refused() {
    let base = server().await;
    let client = client_builder(Policy::local()).build().unwrap();
    let resp = client.get(format!("{base}/moved")).send().await.unwrap();
    assert_eq!(resp.status(), 308, "the redirect itself comes back");
    assert_eq!(refuse_redirect(resp.status()), Some(Refused::Redirect(308)));
    assert_eq!(refuse_redirect(reqwest::StatusCode::OK), None);
}

#[tokio::test]
async fn a_body_over_the_cap_is_refused_and_one_under_it_is_read() {
    let base = server().await;
    let client = client_builder(Policy::local()).build().unwrap();
    let big = client.get(format!("{base}/big")).send().await.unwrap();
    assert!(matches!(
        read_capped(big, 1024).await,
        Err(ReadError::Refused(Refused::TooLarge(1024)))
    ));
    let small = client.get(format!("{base}/small")).send().await.unwrap();
    assert_eq!(read_capped(small, 1024).await.unwrap(), b"ok");
}
