//! The shared Metagov driver workload (`../shared/metagov-workload.py`), replayed unchanged
//! against a real node: a driver written for Metagov must see no unexpected status.

use std::process::Command;

use serde_json::Value;

use crate::harness::{Node, NodeConfig, Sink};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_metagov_workload_runs_with_no_unexpected_status() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/metagov-workload.py");
    assert!(
        script.exists(),
        "{} is missing: CI lays ../shared beside the repository",
        script.display()
    );
    let sink = Sink::start().await;
    let node = Node::start("workload", NodeConfig::dev()).await;
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let base = node.url("");
    let base = base.trim_end_matches('/').to_string();
    let run = tokio::task::spawn_blocking({
        let script = script.clone();
        let sink_url = sink.url("/callback");
        let json = out.path().to_path_buf();
        move || {
            Command::new("python3")
                .arg(&script)
                .args(["--base", &base, "--sink", &sink_url, "-n", "200", "-c", "8"])
                .arg("--json")
                .arg(&json)
                .output()
                .expect("python3 runs the workload")
        }
    })
    .await
    .expect("workload thread");
    assert!(
        run.status.success(),
        "workload failed: {}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path()).expect("report")).expect("report JSON");
    let phases = report["results"].as_array().expect("phases");
    assert_eq!(phases.len(), 10, "every phase ran: {report}");
    for phase in phases {
        assert_eq!(phase["errors"], 0, "unexpected statuses in {phase}");
        assert_eq!(phase["n"], 200, "every request of {} ran", phase["phase"]);
    }
}
