//! Three `churnguard serve` processes on one PostgreSQL store and one
//! registry behave as one service: a promotion reaches every replica within
//! 5 s while requests keep flowing (none fails), every answer names the
//! model version that produced it, and a web session made on one replica
//! works on the others (and a sign-out on one ends it everywhere).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http::{first_line_addr, request_with, ADMIN, READER, SCORER};
use crate::security::{raw, sign_in};
use crate::support::{copy_dir, trained};

/// Kills the replicas however the test ends.
struct Replicas(Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_postgres_serve_one_champion_and_share_sessions() {
    let Some((store, schema)) = crate::store::postgres_store("replicas").await else {
        return;
    };
    store.close().await;
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("models");
    copy_dir(&base.join("models"), &registry);
    let sep = if crate::store::postgres_url().contains('?') {
        '&'
    } else {
        '?'
    };
    let url = format!(
        "{}{sep}options=-c%20search_path%3D{schema}",
        crate::store::postgres_url()
    );
    let bin = env!("CARGO_BIN_EXE_churnguard");
    let churnguard = |args: &[&str]| {
        let out = Command::new(bin)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // The registry's two versions: serving one, promoting the other.
    let reg = churnguard::registry::Registry::open(&registry).unwrap();
    let serving = reg.champion().unwrap().expect("a champion");
    let next = reg
        .list()
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .find(|id| *id != serving)
        .expect("a second version");

    let keys = format!("reader:{READER},scorer:{SCORER},admin:{ADMIN}");
    let mut replicas = Replicas(Vec::new());
    let mut addrs = Vec::new();
    for _ in 0..3 {
        let mut child = Command::new(bin)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--registry",
                "models",
                "--store",
                &url,
                "--watch-secs",
                "1",
            ])
            .env("CHURNGUARD_API_KEYS", &keys)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        replicas.0.push(child);
        addrs.push(first_line_addr(stdout));
    }

    // Every answer names the version serving it.
    let body = serde_json::json!({
        "customers": crate::server::records_of(
            &std::fs::read_to_string(base.join("latest.csv")).unwrap(),
            3
        )
    })
    .to_string();
    for a in &addrs {
        let r = request_with(*a, "POST", "/v1/score", Some(SCORER), &[], Some(&body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("model-version"), Some(serving.as_str()));
        assert_eq!(r.json()["model_version"], serving.as_str());
        let r = request_with(*a, "GET", "/healthz", None, &[], None).await;
        assert_eq!(r.header("model-version"), Some(serving.as_str()));
    }

    // A session made on one replica is known to the others.
    let (cookie, csrf) = sign_in(addrs[0], READER).await;
    for a in &addrs[1..] {
        let page = raw(*a, "GET", "/", Some(&cookie), "").await;
        assert_eq!(page.status, 200, "{}", page.body);
    }

    // Traffic on all three while the champion moves.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = {
        let (addrs, body, stop) = (addrs.clone(), body.clone(), stop.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            // (replica, seconds since start, status, version)
            let mut seen: Vec<(usize, f64, u16, String)> = Vec::new();
            let mut k = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let i = k % addrs.len();
                k += 1;
                let r = request_with(
                    addrs[i],
                    "POST",
                    "/v1/score",
                    Some(SCORER),
                    &[],
                    Some(&body),
                )
                .await;
                seen.push((
                    i,
                    started.elapsed().as_secs_f64(),
                    r.status,
                    r.header("model-version").unwrap_or("").to_string(),
                ));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (started, seen)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let promoted_at = Instant::now();
    churnguard(&[
        "models",
        "promote",
        &next,
        "--registry",
        "models",
        "--store",
        &url,
    ]);
    // Wait until every replica has answered with the new version (at most 10 s).
    let deadline = promoted_at + Duration::from_secs(10);
    let mut reached = [None::<Duration>; 3];
    while reached.iter().any(Option::is_none) && Instant::now() < deadline {
        for (i, a) in addrs.iter().enumerate() {
            if reached[i].is_none() {
                let r = request_with(*a, "GET", "/healthz", None, &[], None).await;
                if r.header("model-version") == Some(next.as_str()) {
                    reached[i] = Some(promoted_at.elapsed());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (_, seen) = traffic.await.unwrap();
    for (i, r) in reached.iter().enumerate() {
        let r = r.unwrap_or_else(|| panic!("replica {i} never served {next}"));
        assert!(r < Duration::from_secs(5), "replica {i} took {r:?}");
    }
    eprintln!(
        "promotion reached the replicas after {:?}; {} scoring requests during the switch, {} failed",
        reached,
        seen.len(),
        seen.iter().filter(|s| s.2 != 200).count()
    );
    assert!(seen.len() > 20, "{} requests", seen.len());
    let failed: Vec<_> = seen.iter().filter(|s| s.2 != 200).collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    // Each replica answered with the old version, then the new one, never
    // back: the swap is atomic.
    for i in 0..3 {
        let versions: Vec<&str> = seen
            .iter()
            .filter(|s| s.0 == i)
            .map(|s| s.3.as_str())
            .collect();
        let first_new = versions
            .iter()
            .position(|v| *v == next)
            .unwrap_or(versions.len());
        assert!(
            versions[..first_new].iter().all(|v| *v == serving),
            "{versions:?}"
        );
        assert!(
            versions[first_new..].iter().all(|v| *v == next),
            "{versions:?}"
        );
    }

    // Signing out on one replica ends the session on all.
    let out = raw(
        addrs[2],
        "POST",
        "/logout",
        Some(&cookie),
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(out.status, 303, "{}", out.body);
    for a in &addrs {
        let page = raw(*a, "GET", "/", Some(&cookie), "").await;
        assert_eq!(page.status, 303, "{}", page.body);
    }
    drop(replicas);
    crate::store::drop_schema(&schema).await;
}
