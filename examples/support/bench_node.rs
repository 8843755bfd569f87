//! What the governance benches share: a release node started for the bench (sled, group
//! commit, `--dev`) and stopped with SIGTERM, the load average beside each figure, and JSON
//! requests that must succeed. Included with `#[path]` by `governance_bench.rs` and
//! `timeouts_bench.rs` (a subdirectory of `examples/` is not an example of its own).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The 1, 5 and 15 minute load averages, to print beside every figure.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub struct Node {
    pub child: Child,
    pub base: String,
}

impl Node {
    /// Starts `bin serve` on `port` with data in `dir` (and `driver` as driver URL, `env` as
    /// extra environment such as `AGORA_CACHE_MB`, set last so that it wins), and waits until
    /// `/readyz` answers.
    pub async fn start(
        bin: &str,
        port: u16,
        dir: &str,
        driver: Option<&str>,
        env: &[(String, String)],
        client: &reqwest::Client,
    ) -> Node {
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("AGORA_LISTEN", &listen)
            .env("AGORA_DATA_DIR", dir)
            .env("AGORA_DEV", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = driver {
            cmd.env("AGORA_DRIVER_URL", url);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd.spawn().expect("agora starts");
        let base = format!("http://{listen}");
        for _ in 0..400 {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    return Node { child, base };
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the node never became ready");
    }

    pub fn stop(mut self) {
        // SIGTERM: a graceful drain, then exit.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// POSTs `body` as `actor`; the answer must be a success.
pub async fn post(client: &reqwest::Client, url: &str, actor: &str, body: &Value) -> Value {
    let r = client
        .post(url)
        .header("X-Agora-Actor", actor)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

/// One change of an action body.
pub fn change(change: &str, target: &str, params: Value) -> Value {
    json!({"change": change, "target": target, "params": params})
}
