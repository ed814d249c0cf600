//! Fault injection: a training run killed mid-write, models that cannot be
//! served, a store that turns read-only, locked or unreachable, a full disk
//! during scoring, and SIGTERM under load. Tests that need to mount a small
//! tmpfs (root) print `skipping: …` without it, unless
//! `CHURNGUARD_REQUIRE_FAULTS=1` (as `.ci/run` sets) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::actions::{churnguard, ok};
use crate::http::{config, request, start, ADMIN, READER, SCORER};
use crate::support::{copy_dir, trained};

/// A small tmpfs, unmounted on drop.
struct TmpFs {
    dir: tempfile::TempDir,
}

impl TmpFs {
    fn mount(size: &str, test: &str) -> Option<TmpFs> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status();
        if status.is_ok_and(|s| s.success()) {
            return Some(TmpFs { dir });
        }
        let required = std::env::var("CHURNGUARD_REQUIRE_FAULTS").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: cannot mount a tmpfs (needs root)");
        eprintln!("skipping: {test} needs to mount a tmpfs (root)");
        None
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TmpFs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_killed_training_run_leaves_only_whole_versions() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let reg = p.join("models");
    copy_dir(&base.join("models"), &reg);
    let before = std::fs::read_dir(&reg).unwrap().count();
    // Kill at different points: loading, fitting, saving.
    for delay_ms in [150, 400, 900, 1600, 2600, 4000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_churnguard"))
            .args(["train", "--data"])
            .arg(base.join("f.parquet"))
            .args(["--families", "logistic,tree", "--registry"])
            .arg(&reg)
            // Training records itself in the default store of its working
            // directory: the test's, never the repository.
            .current_dir(p)
            .env_remove("CHURNGUARD_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let list = ok(&["models", "list", "--registry", reg.to_str().unwrap()], p);
        for line in list
            .lines()
            .filter(|l| l.contains("-logistic-") || l.contains("-tree-"))
        {
            let id = line
                .split_whitespace()
                .find(|w| w.contains("-logistic-") || w.contains("-tree-"))
                .unwrap()
                .trim_start_matches('*');
            ok(
                &["models", "show", id, "--registry", reg.to_str().unwrap()],
                p,
            );
        }
        ok(
            &[
                "predict",
                "--model",
                "champion",
                "--registry",
                reg.to_str().unwrap(),
                "--data",
                base.join("latest.csv").to_str().unwrap(),
                "--out",
                "p.csv",
            ],
            p,
        );
    }
    let after = std::fs::read_dir(&reg).unwrap().count();
    assert!(after >= before, "nothing was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_with_other_inputs_is_refused_until_allowed() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let reg = p.join("models");
    copy_dir(&base.join("models"), &reg);
    // A flat table with three of the inputs, and a model trained on it.
    ok(
        &[
            "features",
            "--data",
            base.join("co").to_str().unwrap(),
            "--out",
            "f.csv",
        ],
        p,
    );
    let text = std::fs::read_to_string(p.join("f.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep = ["customer_id", "churned", "tenure_days", "mrr", "contract"];
    let idx: Vec<usize> = keep
        .iter()
        .map(|k| header.iter().position(|h| h == k).unwrap())
        .collect();
    let mut flat = keep.join(",") + "\n";
    for (n, l) in lines.enumerate() {
        let cells: Vec<&str> = l.split(',').collect();
        if cells[idx[1]].is_empty() {
            continue;
        }
        let mut row: Vec<String> = idx.iter().map(|&i| cells[i].to_string()).collect();
        row[0] = format!("{}-{n}", row[0]);
        flat += &(row.join(",") + "\n");
    }
    std::fs::write(p.join("flat.csv"), flat).unwrap();
    std::fs::write(
        p.join("flat.toml"),
        "name = \"small\"\nid = \"customer_id\"\n[target]\ncolumn = \"churned\"\npositive = \"1\"\n[columns]\nnumeric = [\"tenure_days\", \"mrr\"]\ncategorical = [\"contract\"]\n",
    )
    .unwrap();
    let out = ok(
        &[
            "train",
            "--data",
            "flat.csv",
            "--schema",
            "flat.toml",
            "--families",
            "logistic",
            "--registry",
            "models",
            "--no-promote",
        ],
        p,
    );
    let other = out
        .split_whitespace()
        .find(|w| w.contains("-logistic-") && !w.contains('/'))
        .unwrap()
        .to_string();
    let store = format!("sqlite://{}", p.join("s.db").display());
    let (addr, state) = start(config(&reg, &store, None)).await;
    let serving = state.active.load_full().unwrap().manifest.id.clone();
    let r = request(
        addr,
        "POST",
        &format!("/v1/models/reload?id={other}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.json()["code"], "model_rejected");
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("different inputs"));
    assert_eq!(state.active.load_full().unwrap().manifest.id, serving);
    let r = request(
        addr,
        "POST",
        &format!("/v1/models/reload?id={other}&allow_schema_change=true"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let one = r#"{"customer_id":"x","tenure_days":30,"mrr":99,"contract":"monthly"}"#;
    let r = request(addr, "POST", "/v1/score", Some(SCORER), Some(one)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["model_version"], other.as_str());
}

async fn wait_ready(addr: std::net::SocketAddr, want: bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = request(addr, "GET", "/readyz", None, None).await;
        let j = r.json();
        if j["ready"].as_bool() == Some(want) {
            return j;
        }
        assert!(Instant::now() < deadline, "readyz never became {want}: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The store's disk fills up (a tmpfs topped up with a filler file): writes
/// answer 503 and say nothing internal, reads keep working, and everything
/// recovers once space is back. (A read-only remount is refused while the
/// server holds the database open for writing, so "cannot write" is
/// reproduced by a full disk; "locked" and "unreachable" are below.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_cannot_write_answers_503_and_recovers() {
    let Some(fs) = TmpFs::mount("64m", "a_store_that_cannot_write_answers_503_and_recovers") else {
        return;
    };
    let base = trained();
    let store = format!("sqlite://{}", fs.path().join("s.db").display());
    let (addr, _) = start(config(&base.join("models"), &store, Some(&base.join("co")))).await;
    let r = request(
        addr,
        "POST",
        "/v1/scoring-runs",
        Some(ADMIN),
        Some(r#"{"snapshot":"2024-09-01"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    wait_ready(addr, true).await;

    // Fill what is left of the disk.
    let filler = fs.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let r = request(
        addr,
        "POST",
        "/v1/scoring-runs",
        Some(ADMIN),
        Some(r#"{"snapshot":"2024-09-15"}"#),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["code"], "store_unavailable");
    assert!(
        !r.body.contains("full"),
        "5xx bodies say nothing internal: {}",
        r.body
    );
    let r = request(addr, "GET", "/v1/risk-list?limit=3", Some(READER), None).await;
    assert_eq!(r.status, 200, "reads still work: {}", r.body);

    std::fs::remove_file(&filler).unwrap();
    wait_ready(addr, true).await;
    let r = request(
        addr,
        "POST",
        "/v1/scoring-runs",
        Some(ADMIN),
        Some(r#"{"snapshot":"2024-09-15"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_store_answers_503_and_recovers() {
    use sqlx::{Connection, Executor};
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.db");
    let store = format!("sqlite://{}", file.display());
    let (addr, _) = start(config(&base.join("models"), &store, Some(&base.join("co")))).await;
    wait_ready(addr, true).await;
    // Another process-like holder takes the write lock and keeps it.
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    holder.execute("BEGIN EXCLUSIVE").await.unwrap();
    let r = request(
        addr,
        "POST",
        "/v1/scoring-runs",
        Some(ADMIN),
        Some(r#"{"snapshot":"2024-09-01"}"#),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["code"], "store_unavailable");
    // Once a write has failed, readiness probes the lock and says not ready.
    let j = wait_ready(addr, false).await;
    assert_eq!(j["store"], false);
    holder.execute("ROLLBACK").await.unwrap();
    holder.close().await.unwrap();
    wait_ready(addr, true).await;
    let r = request(
        addr,
        "POST",
        "/v1/scoring-runs",
        Some(ADMIN),
        Some(r#"{"snapshot":"2024-09-01"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// A TCP forwarder to PostgreSQL that can be cut and restored.
struct Proxy {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
    target: String,
}

impl Proxy {
    async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut p = Proxy {
            port,
            task: None,
            target: target.to_string(),
        };
        p.task = Some(Self::serve(listener, p.target.clone()));
        p
    }

    fn serve(listener: tokio::net::TcpListener, target: String) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        })
    }

    /// Drops the listener and every forwarded connection.
    fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.task = Some(Self::serve(listener, self.target.clone()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_answers_503_and_recovers() {
    let Some((store, schema)) = crate::store::postgres_store("faults_gone").await else {
        return;
    };
    store.close().await;
    let url = crate::store::postgres_url();
    let host_port = url
        .split('@')
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:5432")
        .to_string();
    let mut proxy = Proxy::start(&host_port).await;
    let proxied = url.replacen(&host_port, &format!("127.0.0.1:{}", proxy.port), 1);
    let sep = if proxied.contains('?') { '&' } else { '?' };
    let proxied = format!("{proxied}{sep}options=-c%20search_path%3D{schema}");
    let base = trained();
    let (addr, _) = start(config(
        &base.join("models"),
        &proxied,
        Some(&base.join("co")),
    ))
    .await;
    let r = request(
        addr,
        "POST",
        "/v1/scoring-runs",
        Some(ADMIN),
        Some(r#"{"snapshot":"2024-09-01"}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);

    proxy.cut();
    let j = wait_ready(addr, false).await;
    assert_eq!(j["store"], false);
    let r = request(addr, "GET", "/v1/risk-list", Some(READER), None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["code"], "store_unavailable");
    // Scoring does not need the store: it keeps working.
    let rec = std::fs::read_to_string(base.join("latest.csv")).unwrap();
    assert!(!rec.is_empty());

    proxy.restore().await;
    wait_ready(addr, true).await;
    let r = request(addr, "GET", "/v1/risk-list?limit=2", Some(READER), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    crate::store::drop_schema(&schema).await;
}

#[test]
fn a_full_disk_during_scoring_leaves_no_partial_files() {
    let Some(fs) = TmpFs::mount("300k", "a_full_disk_during_scoring_leaves_no_partial_files")
    else {
        return;
    };
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let out_dir: PathBuf = fs.path().join("out");
    let out = churnguard(
        &[
            "score",
            "--data",
            base.join("co").to_str().unwrap(),
            "--registry",
            base.join("models").to_str().unwrap(),
            "--snapshot",
            "2024-09-01",
            "--out",
            out_dir.to_str().unwrap(),
            "--store",
            "sqlite://s.db",
        ],
        dir.path(),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No space left") && err.contains("none were left behind"),
        "{err}"
    );
    let left: Vec<String> = std::fs::read_dir(&out_dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_churnguard"))
        .args(["serve", "--listen", "127.0.0.1:0", "--registry"])
        .arg(base.join("models"))
        .args([
            "--store",
            &format!("sqlite://{}", dir.path().join("s.db").display()),
        ])
        .env("CHURNGUARD_API_KEYS", format!("scorer:{SCORER}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = crate::http::first_line_addr(server.stdout.take().unwrap());
    // Big batches: each takes a while in a debug build.
    let text = std::fs::read_to_string(base.join("latest.csv")).unwrap();
    let records = crate::server::records_of(&text, usize::MAX);
    let mut batch = Vec::new();
    while batch.len() < 4000 {
        batch.extend(records.iter().cloned());
    }
    batch.truncate(4000);
    for (k, r) in batch.iter_mut().enumerate() {
        r["customer_id"] = serde_json::json!(format!("c{k}"));
    }
    let body = serde_json::json!({ "customers": batch }).to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let statuses = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let r = request(addr, "POST", "/v1/score", Some(SCORER), Some(&body)).await;
                (r.status, r.body.len())
            }));
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        crate::security::terminate(server.id());
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for (status, len) in &statuses {
        assert_eq!(*status, 200, "an in-flight request failed");
        assert!(*len > 100_000, "a response was cut short ({len} bytes)");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(code) = server.try_wait().unwrap() {
            assert!(code.success(), "server exit: {code}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

/// What the store holds of one run: its row, its scores, the interventions
/// it created, its scorecards and its audit entries.
async fn run_in_store(db: &Path, run_id: &str) -> (i64, i64, i64, i64, i64) {
    use sqlx::Connection;
    async fn count(c: &mut sqlx::SqliteConnection, sql: &'static str, run_id: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(run_id)
            .fetch_one(c)
            .await
            .unwrap_or(0)
    }
    let url = format!("sqlite://{}", db.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let c = &mut c;
    (
        count(
            c,
            "SELECT COUNT(*) FROM scoring_runs WHERE run_id = $1",
            run_id,
        )
        .await,
        count(
            c,
            "SELECT COUNT(*) FROM customer_scores WHERE run_id = $1",
            run_id,
        )
        .await,
        count(
            c,
            "SELECT COUNT(*) FROM interventions WHERE created_run = $1",
            run_id,
        )
        .await,
        count(
            c,
            "SELECT COUNT(DISTINCT role || '/' || stage) FROM kpi_snapshots WHERE run_id = $1",
            run_id,
        )
        .await,
        count(
            c,
            "SELECT COUNT(*) FROM audit_log WHERE subject = $1",
            run_id,
        )
        .await,
    )
}

fn visible_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_killed_scoring_run_leaves_all_of_the_run_or_none() {
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // A company large enough for a run to take a while, so the kills land
    // in every step: loading, features, scoring, the store's transaction,
    // the files.
    ok(
        &[
            "generate",
            "--customers",
            "6000",
            "--seed",
            "3",
            "--out",
            "co",
        ],
        p,
    );
    let score = |run_id: &str, out: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_churnguard"));
        cmd.args(["score", "--data", "co", "--registry"])
            .arg(base.join("models"))
            .args([
                "--snapshot",
                "2024-09-01",
                "--store",
                "sqlite://s.db",
                "--run-id",
                run_id,
                "--out",
                out,
            ])
            .current_dir(p)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A whole run: how long it takes, and what "all of it" is.
    let t0 = Instant::now();
    let status = score("run-whole", "out-whole").status().unwrap();
    let whole_secs = t0.elapsed().as_secs_f64();
    assert!(status.success());
    let whole = rt.block_on(run_in_store(&p.join("s.db"), "run-whole"));
    let whole_files = visible_files(&p.join("out-whole"));
    assert_eq!(whole.0, 1);
    assert!(
        whole.1 > 1000 && whole.2 > 0 && whole.3 == 6 && whole.4 >= 7,
        "{whole:?}"
    );
    assert!(whole_files.len() >= 8, "{whole_files:?}");

    // Where to kill: at each step's boundary (a failpoint stops the process
    // there until it is killed), then at fractions of a whole run's time.
    let points: Vec<(String, Option<&str>, f64)> = [
        "score_run.after_load",
        "score_run.after_compute",
        "store.save_run.before_commit",
        "score_run.after_persist",
        "score_run.files_staged",
    ]
    .into_iter()
    .map(|f| (f.to_string(), Some(f), 0.0))
    .chain(
        [0.05, 0.15, 0.3, 0.45, 0.6, 0.7, 0.8, 0.88, 0.94, 0.98]
            .into_iter()
            .map(|x| (format!("{:.0}% of a run", 100.0 * x), None, x)),
    )
    .collect();
    let mut outcomes = Vec::new();
    for (k, (label, failpoint, fraction)) in points.into_iter().enumerate() {
        let run_id = format!("run-killed-{k}");
        let out = format!("out-{k}");
        let mut cmd = score(&run_id, &out);
        let mut child = match failpoint {
            Some(f) => {
                let mut child = cmd
                    .env("CHURNGUARD_FAILPOINT", f)
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
                let mut line = String::new();
                std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
                assert!(line.contains(f), "{f}: the run said {line:?}");
                child
            }
            None => {
                let child = cmd.spawn().unwrap();
                std::thread::sleep(Duration::from_secs_f64(whole_secs * fraction));
                child
            }
        };
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let got = rt.block_on(run_in_store(&p.join("s.db"), &run_id));
        // A later run at the same snapshot updates the interventions the
        // first one created rather than creating new ones, so "all of it" is
        // the run, every score, every scorecard and the audit entries.
        let none = (0, 0, 0, 0, 0);
        let all = (1, whole.1, got.2, 6, got.4);
        assert!(
            got == none || (got == all && got.4 >= 7),
            "killed at {label}: the store holds part of it: run {}, scores {}/{}, interventions {}, scorecards {}, audit entries {}",
            got.0,
            got.1,
            whole.1,
            got.2,
            got.3,
            got.4
        );
        let files = visible_files(&p.join(&out));
        assert!(
            files.is_empty() || files == whole_files,
            "killed at {label}: the output folder holds {files:?}"
        );
        outcomes.push((label, got.0 == 1, !files.is_empty()));
    }
    eprintln!("kill points (where, run in store, files written): {outcomes:?}");
    // The kills landed on both sides of the commit.
    assert!(
        outcomes.iter().any(|o| !o.1),
        "no kill landed before the commit"
    );
    assert!(
        outcomes.iter().any(|o| o.1),
        "no kill landed after the commit"
    );
    // A later run still works, and the audit chain is whole.
    assert!(score("run-after", "out-after").status().unwrap().success());
    ok(&["audit", "verify", "--store", "sqlite://s.db"], p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_scoring_run_keeps_its_lock_so_runs_never_overlap() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("churnguard_server=info")
        .with_test_writer()
        .try_init();
    let base = trained();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("s.db").display());
    let mut c = config(&base.join("models"), &store, Some(&base.join("co")));
    // Far shorter than a run takes (about 0.1 s here in a debug build):
    // every run request times out, and the second one below times out
    // while the first run still holds the lock.
    c.serve.request_timeout_secs = 0.01;
    let (addr, state) = start(c).await;
    let body = Some(r#"{"snapshot":"2024-09-01"}"#);
    let r = request(addr, "POST", "/v1/scoring-runs", Some(ADMIN), body).await;
    assert_eq!(
        r.status, 503,
        "the run should outlast the timeout: {}",
        r.body
    );
    // The request is gone, the run is not: it still holds the lock.
    assert!(
        state.run_lock.try_lock().is_err(),
        "the run's lock was released when its request timed out"
    );
    // A second request while the first run holds the lock waits for it; it
    // times out while waiting, so it never runs at all (a client's retry
    // cannot double a run, and two runs never overlap).
    let r = request(addr, "POST", "/v1/scoring-runs", Some(ADMIN), body).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(600);
    while state.run_lock.try_lock().is_err() {
        assert!(Instant::now() < deadline, "the first run did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let runs = state.store.runs().await.unwrap();
    assert_eq!(runs.len(), 1, "a run started while another held the lock");
    let first = runs[0].clone();
    // With the lock free, the next request's run starts (and finishes
    // after its request timed out), after the first was saved.
    let r = request(addr, "POST", "/v1/scoring-runs", Some(ADMIN), body).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let runs = loop {
        let runs = state.store.runs().await.unwrap();
        if runs.len() == 2 && state.run_lock.try_lock().is_ok() {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "the next run did not finish: {:?}",
            state.store.audit_log().await.unwrap().last()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let second = runs.iter().find(|r| r.run_id != first.run_id).unwrap();
    let log = state.store.audit_log().await.unwrap();
    let first_saved = log
        .iter()
        .find(|e| e.action == "scoring_run.saved" && e.subject == first.run_id)
        .map(|e| e.at)
        .unwrap();
    assert!(second.created_at >= first_saved);
    assert!(state.store.verify_audit(None).await.unwrap().is_ok());
}
