//! POST /v1/score parses the body into a `serde_json::Value` and sends it back.
//! Usage: bench-echo 127.0.0.1:PORT

use axum::{routing::post, Json, Router};

async fn echo(Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    Json(body)
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".into());
    let app = Router::new().route("/v1/score", post(echo));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("bind the listen address");
    println!("echo serving on http://{addr}");
    axum::serve(listener, app).await.expect("serve");
}
