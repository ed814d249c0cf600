//! A small HTTP/1.1 client for driving the real server over loopback, and a
//! helper that starts one on an ephemeral port.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use churnguard::config::Config;
use churnguard::serve::config::ApiKeyConfig;
use churnguard::serve::{self, AppState, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const READER: &str = "reader-key-000000000001";
pub const SCORER: &str = "scorer-key-000000000002";
pub const ADMIN: &str = "admin-key-0000000000003";

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request (Connection: close) and reads the whole reply.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> Reply {
    request_with(addr, method, path, key, &[], body).await
}

/// [`request`] with extra headers.
pub async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = key {
        req += &format!("X-API-Key: {k}\r\n");
    }
    for (name, value) in headers {
        req += &format!("{name}: {value}\r\n");
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || method == "POST" {
        req += &format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    req += "\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = rest;
        loop {
            let (size, after) = rest.split_once("\r\n").unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        rest.to_string()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A config for a test server: the registry, a store URL, three keys.
pub fn config(registry: &Path, store: &str, data: Option<&Path>) -> Config {
    let mut c = Config::default();
    c.app.store.url = store.to_string();
    // A loaded 2-core CI machine runs many tests at once: generous, so only
    // the tests that are about timeouts ever see one.
    c.serve.request_timeout_secs = 300.0;
    c.serve.registry = registry.display().to_string();
    c.serve.data = data.map(|d| d.display().to_string());
    c.serve.keys = [
        ("cs-team", "reader", READER),
        ("scoring-client", "scorer", SCORER),
        ("ops", "admin", ADMIN),
    ]
    .iter()
    .map(|(name, role, key)| ApiKeyConfig {
        name: name.to_string(),
        role: role.to_string(),
        sha256: serve::auth::hash_key(key),
        owner: None,
    })
    .collect();
    c
}

/// A running server on 127.0.0.1:0; dropped with the runtime.
pub async fn start(config: Config) -> (SocketAddr, Arc<AppState>) {
    let state = serve::build_state(config.app, config.serve, &ServeOptions::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = serve::router(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, state)
}

/// Reads a server's first stdout line (`churnguard serving on http://ADDR`)
/// and returns the address.
pub fn first_line_addr(mut stdout: impl std::io::Read) -> SocketAddr {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        if stdout.read(&mut byte).unwrap() == 0 {
            panic!("the server exited before printing its address");
        }
        line.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&line).to_string();
    text.trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}
