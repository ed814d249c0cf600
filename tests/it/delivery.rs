//! Webhook delivery against a local receiver that fails, times out and
//! loses its answers: every treated intervention arrives, every attempt of
//! one intervention carries the same idempotency key and body, signed, so
//! the receiver applies each once; a receiver that never answers fills the
//! dead-letter list, which an admin can retry.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{KeyInit, Mac};

use crate::actions::ok;
use crate::support::trained;

const SECRET: &str = "test-webhook-secret";

/// What the receiver saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    key: String,
    intervention: i64,
    body: String,
}

#[derive(Default)]
struct Receiver {
    seen: Vec<Seen>,
    /// Requests that reached the point of acting, by key; the receiver
    /// acts on the first of each key only.
    applied: HashMap<String, usize>,
    bad_signatures: usize,
}

fn read_request(stream: &mut TcpStream) -> Option<(HashMap<String, String>, String)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((headers, String::from_utf8(body).ok()?))
}

fn verified(signature: &str, body: &str) -> bool {
    let Some((t, v1)) = signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
    else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    hex::encode(mac.finalize().into_bytes()) == v1
}

/// A receiver whose behaviour depends on the intervention and the attempt:
/// id % 4 == 0 answers 500 once; == 1 acts, then answers after the sender's
/// timeout; == 2 acts, then drops the connection without an answer; == 3
/// answers 200 at once. Later attempts answer 200.
fn spawn_receiver() -> (String, Arc<Mutex<Receiver>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/churnguard", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(Receiver::default()));
    let shared = state.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let state = shared.clone();
            std::thread::spawn(move || {
                let Some((headers, body)) = read_request(&mut stream) else {
                    return;
                };
                let key = headers.get("idempotency-key").cloned().unwrap_or_default();
                let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let id = value["intervention"]["id"].as_i64().unwrap_or(-1);
                let attempt = {
                    let mut s = state.lock().unwrap();
                    if !verified(headers.get("churnguard-signature").map_or("", |s| s), &body) {
                        s.bad_signatures += 1;
                    }
                    s.seen.push(Seen {
                        key: key.clone(),
                        intervention: id,
                        body: body.clone(),
                    });
                    s.seen.iter().filter(|x| x.intervention == id).count()
                };
                // Idempotent: a key already applied is acknowledged, not applied again.
                let apply = |state: &Mutex<Receiver>| {
                    *state
                        .lock()
                        .unwrap()
                        .applied
                        .entry(key.clone())
                        .or_default() += 1;
                };
                let answer = |stream: &mut TcpStream, status: &str| {
                    let _ = stream.write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                };
                match (id.rem_euclid(4), attempt) {
                    (0, 1) => answer(&mut stream, "500 Internal Server Error"),
                    (1, 1) => {
                        apply(&state);
                        std::thread::sleep(Duration::from_millis(2500));
                        answer(&mut stream, "200 OK");
                    }
                    (2, 1) => {
                        apply(&state);
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                    }
                    _ => {
                        apply(&state);
                        answer(&mut stream, "200 OK");
                    }
                }
            });
        }
    });
    (url, state)
}

fn churnguard(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_churnguard"))
        .args(args)
        .current_dir(cwd)
        .env_remove("CHURNGUARD_DATABASE_URL")
        .env("CHURNGUARD_TEST_HOOK_SECRET", SECRET)
        .output()
        .expect("runs the binary")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_intervention_reaches_the_receiver_once_despite_failures_and_duplicates() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let (url, receiver) = spawn_receiver();
    // A closed port: every attempt is refused.
    let dead_end = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    std::fs::write(
        p.join("churnguard.toml"),
        format!(
            r#"[store]
url = "sqlite://cg.db"

[serve.delivery]
max_attempts = 4
first_retry_secs = 1
max_retry_secs = 2
timeout_secs = 1

[[serve.delivery.webhooks]]
name = "crm"
url = "{url}"
secret_env = "CHURNGUARD_TEST_HOOK_SECRET"

[[serve.delivery.webhooks]]
name = "dead-end"
url = "{dead_end}"
secret_env = "CHURNGUARD_TEST_HOOK_SECRET"
"#
        ),
    )
    .unwrap();
    let data = base.join("co");
    let models = base.join("models");
    ok(
        &[
            "score",
            "--data",
            data.to_str().unwrap(),
            "--registry",
            models.to_str().unwrap(),
            "--out",
            "run",
        ],
        p,
    );
    // The treated, open interventions the run made (control ones must not leave).
    let (treated, control): (Vec<i64>, Vec<i64>) = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let url = format!("sqlite://{}", p.join("cg.db").display());
            let s = churnguard::store::Store::connect(&url).await.unwrap();
            let all = s.all_interventions().await.unwrap();
            s.close().await;
            let open = all.iter().filter(|i| i.status.is_open());
            (
                open.clone()
                    .filter(|i| i.arm == churnguard::interventions::Arm::Treated)
                    .map(|i| i.id)
                    .collect(),
                all.iter()
                    .filter(|i| i.arm == churnguard::interventions::Arm::Control)
                    .map(|i| i.id)
                    .collect(),
            )
        })
    };
    assert!(
        treated.len() >= 8,
        "{} treated interventions",
        treated.len()
    );
    let out = churnguard(&["deliver", "--drain"], p);
    assert!(out.status.success(), "{}", text(&out));

    let r = receiver.lock().unwrap();
    assert_eq!(
        r.bad_signatures, 0,
        "every request is signed with the secret"
    );
    let mut keys_of: HashMap<i64, HashSet<&str>> = HashMap::new();
    let mut bodies_of: HashMap<i64, HashSet<&str>> = HashMap::new();
    for s in &r.seen {
        keys_of.entry(s.intervention).or_default().insert(&s.key);
        bodies_of.entry(s.intervention).or_default().insert(&s.body);
    }
    let received: HashSet<i64> = keys_of.keys().copied().collect();
    let want: HashSet<i64> = treated.iter().copied().collect();
    assert_eq!(
        received, want,
        "every treated intervention, and nothing else, arrives"
    );
    assert!(control.iter().all(|c| !received.contains(c)));
    let mut all_keys = HashSet::new();
    for (id, keys) in &keys_of {
        assert_eq!(keys.len(), 1, "intervention {id} arrived under {keys:?}");
        assert_eq!(
            bodies_of[id].len(),
            1,
            "intervention {id}: its body changed between attempts"
        );
        assert!(
            all_keys.insert(*keys.iter().next().unwrap()),
            "a key shared by two interventions"
        );
    }
    // The failures really happened: retries and duplicates reached the receiver.
    let retried = r
        .seen
        .iter()
        .filter(|s| s.intervention.rem_euclid(4) != 3)
        .count();
    let failing = treated.iter().filter(|i| i.rem_euclid(4) != 3).count();
    assert!(
        retried >= 2 * failing,
        "{retried} requests for {failing} failing interventions"
    );
    // Acted on once each: one key per intervention, so the receiver's
    // dedup leaves exactly the treated interventions, though some keys came
    // to the point of acting twice (a lost answer, a timeout after acting).
    assert_eq!(r.applied.len(), treated.len());
    assert!(
        r.applied.values().any(|&n| n >= 2),
        "no duplicate reached the receiver"
    );
    drop(r);

    let delivered = text(&churnguard(&["deliver", "--list", "delivered"], p));
    assert_eq!(
        delivered.lines().filter(|l| l.contains(" crm ")).count(),
        treated.len(),
        "{delivered}"
    );
    // The closed port: every delivery dead after its attempts, listed with why.
    let dead = text(&churnguard(&["deliver", "--list", "dead"], p));
    let dead_rows: Vec<&str> = dead.lines().filter(|l| l.contains("dead-end")).collect();
    assert_eq!(dead_rows.len(), treated.len(), "{dead}");
    assert!(
        dead_rows
            .iter()
            .all(|l| l.contains("attempts 4") && l.contains("last error: cannot send")),
        "{dead}"
    );
    // An admin retries one: back in the queue, audit-logged.
    let id = treated[0].to_string();
    let out = churnguard(&["deliver", "--retry", &id, "--webhook", "dead-end"], p);
    assert!(out.status.success(), "{}", text(&out));
    let pending = text(&churnguard(&["deliver", "--list", "pending"], p));
    assert_eq!(
        pending.lines().filter(|l| l.contains("dead-end")).count(),
        1,
        "{pending}"
    );
    let audit = text(&churnguard(&["audit", "show", "--limit", "100000"], p));
    assert!(
        audit.contains("delivery.dead") && audit.contains("delivery.retried"),
        "{audit}"
    );
    // Retrying what is not dead is a clear 404-kind error.
    let out = churnguard(&["deliver", "--retry", &id, "--webhook", "crm"], p);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        !out.status.success() && text(&out).contains("dead delivery"),
        "{}",
        text(&out)
    );
    // A webhook whose secret is missing fails up front, naming the variable.
    let out = Command::new(env!("CARGO_BIN_EXE_churnguard"))
        .args(["deliver"])
        .current_dir(p)
        .env_remove("CHURNGUARD_DATABASE_URL")
        .env_remove("CHURNGUARD_TEST_HOOK_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("CHURNGUARD_TEST_HOOK_SECRET"),
        "{}",
        text(&out)
    );
}
