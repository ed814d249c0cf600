//! Access control and hardening: the role matrix of every API route and
//! page, CSRF, security headers, rate limits, and keys kept out of logs.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::actions::ok;
use crate::http::{config, request, start, ADMIN, READER, SCORER};
use crate::support::trained;

/// What a caller may expect of a route: the least role that passes auth.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Need {
    Nobody,
    Reader,
    Scorer,
    Admin,
}

const ROUTES: &[(&str, &str, Option<&str>, Need)] = &[
    ("GET", "/healthz", None, Need::Nobody),
    ("GET", "/readyz", None, Need::Nobody),
    ("GET", "/metrics", None, Need::Nobody),
    ("GET", "/openapi.json", None, Need::Nobody),
    ("POST", "/v1/score", Some("{}"), Need::Scorer),
    ("GET", "/v1/customers/1", None, Need::Reader),
    ("GET", "/v1/risk-list", None, Need::Reader),
    ("GET", "/v1/interventions", None, Need::Reader),
    (
        "POST",
        "/v1/interventions/1/outcome",
        Some(r#"{"outcome":"retained"}"#),
        Need::Admin,
    ),
    ("GET", "/v1/outcomes", None, Need::Reader),
    (
        "GET",
        "/v1/interventions/export?owner=1",
        None,
        Need::Reader,
    ),
    ("GET", "/v1/deliveries", None, Need::Admin),
    (
        "POST",
        "/v1/deliveries/1/retry",
        Some(r#"{"webhook":"crm"}"#),
        Need::Admin,
    ),
    // A key without an owner may not override: only admins and the
    // customer's own account manager may.
    (
        "POST",
        "/v1/customers/1/overrides",
        Some(r#"{"band":"green","reason":"r","expires_on":"2099-01-01"}"#),
        Need::Admin,
    ),
    ("POST", "/v1/overrides/1/revoke", None, Need::Admin),
    ("GET", "/v1/monitoring", None, Need::Reader),
    ("POST", "/v1/scoring-runs", Some("{}"), Need::Admin),
    ("GET", "/v1/kpi/scorecards", None, Need::Reader),
    ("GET", "/v1/models", None, Need::Reader),
    ("POST", "/v1/models/reload", None, Need::Admin),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_route_enforces_its_role() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let (addr, _) = start(config(&base.join("models"), &store, None)).await;
    let callers = [
        (None, Need::Nobody),
        (Some(READER), Need::Reader),
        (Some(SCORER), Need::Scorer),
        (Some(ADMIN), Need::Admin),
    ];
    for (method, path, body, need) in ROUTES {
        for (key, has) in callers {
            let r = request(addr, method, path, key, *body).await;
            let denied = r.status == 401 || r.status == 403;
            if has >= *need {
                assert!(
                    !denied,
                    "{method} {path} as {has:?}: {} {}",
                    r.status, r.body
                );
                assert!(
                    r.status < 500,
                    "{method} {path} as {has:?}: {} {}",
                    r.status,
                    r.body
                );
            } else if has == Need::Nobody {
                assert_eq!(r.status, 401, "{method} {path} without a key: {}", r.body);
            } else {
                assert_eq!(r.status, 403, "{method} {path} as {has:?}: {}", r.body);
            }
        }
    }
}

/// Signs in on the web app; returns the session cookie and the CSRF token.
pub(crate) async fn sign_in(addr: std::net::SocketAddr, key: &str) -> (String, String) {
    let r = raw(addr, "POST", "/login", None, &format!("api_key={key}")).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = raw(addr, "GET", "/", Some(&cookie), "").await;
    let token = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_string();
    (cookie, token)
}

/// A form request with an optional cookie.
pub(crate) async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &str,
) -> crate::http::Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req += &format!("Cookie: {c}\r\n");
    }
    if method == "POST" {
        req += &format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            form.len()
        );
    }
    req += "\r\n";
    req += form;
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    crate::http::Reply {
        status,
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
        body: body.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_forms_need_the_token_and_the_role() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    // A run with interventions, so that forms exist.
    ok(
        &[
            "score",
            "--data",
            base.join("co").to_str().unwrap(),
            "--registry",
            base.join("models").to_str().unwrap(),
            "--snapshot",
            "2024-10-01",
            "--out",
            "r",
            "--store",
            &store,
        ],
        dir.path(),
    );
    let (addr, _) = start(config(&base.join("models"), &store, None)).await;
    for page in [
        "/",
        "/interventions",
        "/kpi",
        "/models",
        "/monitoring",
        "/retention",
        "/customers/1",
        "/risk-list.csv",
    ] {
        let r = raw(addr, "GET", page, None, "").await;
        assert_eq!(r.status, 303, "{page} without a session");
        assert_eq!(r.header("location"), Some("/login"));
    }
    let login = raw(addr, "GET", "/login", None, "").await;
    assert_eq!(login.status, 200);
    let csp = login.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(login.header("x-frame-options"), Some("DENY"));

    let (cookie, token) = sign_in(addr, READER).await;
    assert!(cookie.starts_with("cg_session="));
    for page in [
        "/",
        "/interventions",
        "/kpi",
        "/models",
        "/monitoring",
        "/retention",
    ] {
        let r = raw(addr, "GET", page, Some(&cookie), "").await;
        assert_eq!(r.status, 200, "{page} as reader");
        if page == "/retention" {
            // The run's cohorts: observed against projected, drawn and tabled.
            for part in [
                "Retention by signup month",
                "Retention by signup cohort: observed and projected",
                "Projected at 12 months",
            ] {
                assert!(r.body.contains(part), "/retention lacks {part:?}");
            }
        }
        if page == "/interventions" {
            for part in [
                "By playbook",
                "By owner",
                "How many customers each experiment needs",
                "Expected loss = churn probability × lifetime value",
                "Decision: ",
            ] {
                assert!(r.body.contains(part), "{page} lacks {part:?}");
            }
        }
        assert!(
            !r.body.contains("Record outcome"),
            "{page} shows admin buttons to a reader"
        );
    }
    let form = format!("csrf={token}&outcome=retained");
    let r = raw(
        addr,
        "POST",
        "/interventions/1/outcome",
        Some(&cookie),
        &form,
    )
    .await;
    assert_eq!(r.status, 403, "a reader may not record outcomes");
    let r = raw(
        addr,
        "POST",
        "/interventions/1/done",
        Some(&cookie),
        &format!("csrf={token}"),
    )
    .await;
    assert_eq!(r.status, 403);

    let (admin, admin_token) = sign_in(addr, ADMIN).await;
    let r = raw(
        addr,
        "POST",
        "/interventions/1/done",
        Some(&admin),
        "csrf=wrong",
    )
    .await;
    assert_eq!(
        r.status, 403,
        "a wrong CSRF token is refused even for admins"
    );
    let r = raw(addr, "POST", "/interventions/1/done", Some(&admin), "").await;
    assert!(r.status >= 400, "no token at all is refused");
    let r = raw(addr, "POST", "/logout", Some(&admin), "csrf=wrong").await;
    assert_eq!(r.status, 403);
    let r = raw(
        addr,
        "POST",
        "/logout",
        Some(&admin),
        &format!("csrf={admin_token}"),
    )
    .await;
    assert_eq!(r.status, 303);
    let r = raw(addr, "GET", "/", Some(&admin), "").await;
    assert_eq!(r.status, 303, "the session is gone after signing out");
    let bad = raw(addr, "POST", "/login", None, "api_key=nope").await;
    assert_eq!(bad.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_apply_per_key() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut c = config(&base.join("models"), &store, None);
    c.serve.rate_limit_per_minute = 5;
    let (addr, _) = start(c).await;
    for _ in 0..5 {
        assert_eq!(
            request(addr, "GET", "/v1/models", Some(READER), None)
                .await
                .status,
            200
        );
    }
    let r = request(addr, "GET", "/v1/models", Some(READER), None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["code"], "rate_limited");
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().unwrap() >= 1));
    // Another key has its own bucket.
    assert_eq!(
        request(addr, "GET", "/v1/models", Some(ADMIN), None)
            .await
            .status,
        200
    );
}

#[test]
fn keys_and_customer_values_stay_out_of_the_logs() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let secret = "admin-key-that-must-never-be-logged-42";
    let mut server = Command::new(env!("CARGO_BIN_EXE_churnguard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            base.join("models").to_str().unwrap(),
            "--store",
            &format!("sqlite://{}", dir.path().join("s.db").display()),
            "--log-format",
            "json",
        ])
        .env("CHURNGUARD_API_KEYS", format!("admin:{secret}"))
        .env("CHURNGUARD_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = crate::http::first_line_addr(server.stdout.take().unwrap());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = serde_json::json!({
        "customer_id": "c-1",
        "name": "Zyzzyva Unlogged Corp",
        "tenure_days": 123456,
    })
    .to_string();
    rt.block_on(async {
        request(addr, "GET", "/v1/models", Some(secret), None).await;
        request(
            addr,
            "GET",
            "/v1/models",
            Some("wrong-key-also-secret-99"),
            None,
        )
        .await;
        request(addr, "POST", "/v1/score", Some(secret), Some(&body)).await;
    });
    terminate(server.id());
    let mut logs = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    server.wait().unwrap();
    assert!(
        logs.contains("/v1/models"),
        "the requests were logged: {logs}"
    );
    for s in [secret, "wrong-key-also-secret-99", "Zyzzyva", "123456"] {
        assert!(!logs.contains(s), "{s:?} appears in the logs");
    }
}

/// SIGTERM, through the `kill` command (no libc in the tests).
pub fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_outlive_a_restart_but_not_their_key() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let (first, _) = start(config(&base.join("models"), &store, None)).await;
    let (cookie, _) = sign_in(first, READER).await;
    // Another process on the same store (a restart, or a second replica)
    // knows the session.
    let (second, _) = start(config(&base.join("models"), &store, None)).await;
    assert_eq!(raw(second, "GET", "/", Some(&cookie), "").await.status, 200);
    // Without the reader key in its configuration (revoked), the same
    // session is signed out.
    let mut revoked = config(&base.join("models"), &store, None);
    revoked.serve.keys.retain(|k| k.role != "reader");
    let (third, _) = start(revoked).await;
    let page = raw(third, "GET", "/", Some(&cookie), "").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), Some("/login"));
    // A forged cookie is nobody.
    let forged = raw(second, "GET", "/", Some("cg_session=00ff"), "").await;
    assert_eq!(forged.status, 303);
}
