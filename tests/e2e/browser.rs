//! The dashboard in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs) driven through WebDriver by fantoccini,
//! against a real node. It signs in with a viewer token, lists a community, shows the vote
//! plugin's declared widget with its data, pages through the community's waiting governance
//! actions, watches a vote's tally bar change after a ballot is cast through the API without a
//! reload (driven by the ballot's event on the stream), verifies a closed vote in the browser,
//! flags a tampered ballot list served by a stand-in, and writes a screenshot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::Router;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::harness::{free_port, now_ms, rfc3339, Node, NodeConfig};

const TOKEN: &str = "e2e-driver-token-browser";

/// A chromedriver process, stopped when dropped.
struct Driver(Child, u16);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn chromedriver() -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; .ci/run installs it)");
    let driver = Driver(child, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn browser(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--window-size=1280,1400"]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("a Chromium session")
}

/// Runs `script` in the page until it answers something other than null, false or "".
async fn until(c: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v = c.execute(script, vec![]).await.unwrap_or(Value::Null);
        let done = !matches!(&v, Value::Null | Value::Bool(false))
            && v.as_str().is_none_or(|s| !s.is_empty());
        if done {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn vote(node: &Node, options: Value) -> (String, String) {
    let body = json!({"options": options, "closing_at": rfc3339(now_ms() + 3_600_000)});
    let location = node
        .post_in("town", "/api/internal/process/vote.choice", &body)
        .await
        .expect_status(202)
        .header("location")
        .unwrap();
    let id = location.rsplit('/').next().unwrap().to_string();
    (location, id)
}

async fn cast(node: &Node, location: &str, voter: &str, choice: &str) {
    node.post(
        &format!("{location}/ballots"),
        &json!({"voter": voter, "choice": [choice]}),
    )
    .await
    .expect_status(200);
}

/// Signs in with `secret` on `base`'s dashboard and opens community `town`.
async fn open_town(c: &Client, base: &str, secret: &str) {
    c.goto(&format!("{base}/dashboard")).await.unwrap();
    let input = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#token-input"))
        .await
        .unwrap();
    until(
        c,
        "the token form",
        "return !document.getElementById('token-section').hidden",
    )
    .await;
    input.send_keys(secret).await.unwrap();
    c.find(Locator::Css("#token-form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let town = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("button[data-slug='town']"))
        .await
        .unwrap();
    town.click().await.unwrap();
}

fn count_script(id: &str, option: &str) -> String {
    format!(
        "const e = document.querySelector('#vote-{id} [data-option=\"{option}\"] .count'); \
         return e ? e.textContent : null;"
    )
}

/// A stand-in in front of the node: passes everything through, except that the ballot list
/// of `tampered` comes back with one choice changed and the event stream is refused (403).
async fn tampering_proxy(node_url: String, tampered: String) -> String {
    let client = reqwest::Client::new();
    let app = Router::new().fallback(move |req: Request| {
        let (client, node_url, tampered) = (client.clone(), node_url.clone(), tampered.clone());
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            if path.starts_with("/api/internal/events") {
                return Response::builder()
                    .status(403)
                    .header("content-type", "application/json")
                    .body(Body::from(
                        r#"{"error":{"code":"forbidden","message":"no stream here"}}"#,
                    ))
                    .unwrap();
            }
            let mut out = client.get(format!("{node_url}{path}"));
            if let Some(a) = req.headers().get("authorization") {
                out = out.header("authorization", a.as_bytes());
            }
            let resp = out.send().await.unwrap();
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_string())
                .unwrap_or_default();
            let mut body = resp.bytes().await.unwrap().to_vec();
            if path == format!("{tampered}/ballots") {
                let mut v: Value = serde_json::from_slice(&body).unwrap();
                v["ballots"][0]["choice"] = json!(["no"]);
                body = serde_json::to_vec(&v).unwrap();
            }
            Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_tallies_and_verifies_votes_in_chromium() {
    let node = Node::start("browser", NodeConfig::with_token(TOKEN)).await;
    node.create_community("town").await;
    node.create_community("market").await;
    let (open, open_id) = vote(&node, json!(["yes", "no"])).await;
    cast(&node, &open, "ana", "yes").await;
    let (closed, closed_id) = vote(&node, json!(["yes", "no"])).await;
    cast(&node, &closed, "ana", "yes").await;
    cast(&node, &closed, "ben", "yes").await;
    cast(&node, &closed, "cleo", "no").await;
    node.close(&closed).await;
    // Governance: ana founds it; ben, a member but no governor, proposes twelve renames,
    // each waiting on a governor's approval.
    let governed = |method: reqwest::Method, path: &str, body: Value, agent: &str| {
        node.request(method, &format!("/api/v1/communities/town{path}"))
            .header("X-Agora-Actor", agent)
            .json(&body)
    };
    let r = node
        .send(governed(
            reqwest::Method::POST,
            "/governance",
            json!({"members": ["ana", "ben"]}),
            "ana",
        ))
        .await;
    assert_eq!(r.status, 201, "{}", r.describe());
    let mut waiting = Vec::new();
    for i in 0..12 {
        let body = json!({"change": "rename", "target": "community", "params": {"name": format!("Town {i}")}});
        let r = node
            .send(governed(reqwest::Method::POST, "/actions", body, "ben"))
            .await;
        assert_eq!(r.status, 201, "{}", r.describe());
        let action = r.json();
        assert_eq!(action["status"], "waiting", "{action}");
        waiting.push(action["id"].as_str().unwrap().to_string());
    }
    let viewer = node
        .post(
            "/api/v1/tokens",
            &json!({"role": "viewer", "label": "dashboard"}),
        )
        .await
        .expect_status(201)
        .json()["secret"]
        .as_str()
        .unwrap()
        .to_string();

    let driver = chromedriver().await;
    let c = browser(&driver).await;
    let base = node.url("");
    open_town(&c, base.trim_end_matches('/'), &viewer).await;

    // The vote plugin's declared widget, drawn by the page from its data: the open vote only.
    let widget = until(
        &c,
        "the open-votes widget",
        "const e = document.querySelector('#widget-vote-open-votes[data-kind=\"table\"] tbody'); \
         return e && e.rows.length ? Array.from(e.rows, r => r.cells[0].textContent) : null;",
    )
    .await;
    assert_eq!(widget, json!([open_id.clone()]), "the widget's rows");
    let nav = until(
        &c,
        "the plugin navigation",
        "return document.getElementById('plugin-nav-list').textContent;",
    )
    .await;
    assert!(nav.as_str().unwrap().contains("Votes"), "{nav}");

    // Waiting governance actions, ten a page: the first page, then the next.
    let action_ids = "const rows = document.querySelectorAll('#action-rows tr'); \
         return rows.length ? Array.from(rows, r => r.cells[0].textContent) : null;";
    let first_page = until(&c, "the waiting actions", action_ids).await;
    let first_page: Vec<String> = serde_json::from_value(first_page).unwrap();
    assert_eq!(first_page.len(), 10, "{first_page:?}");
    let row = until(
        &c,
        "a waiting action's row",
        "const r = document.querySelector('#action-rows tr'); return r && r.textContent;",
    )
    .await;
    assert!(row.as_str().unwrap().contains("ben"), "{row}");
    assert!(row.as_str().unwrap().contains("rename"), "{row}");
    c.find(Locator::Css("#actions-next"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let second_page = until(
        &c,
        "the second page of waiting actions",
        "const rows = document.querySelectorAll('#action-rows tr'); \
         return rows.length === 2 ? Array.from(rows, r => r.cells[0].textContent) : null;",
    )
    .await;
    let second_page: Vec<String> = serde_json::from_value(second_page).unwrap();
    let mut shown: Vec<String> = first_page.into_iter().chain(second_page).collect();
    shown.sort();
    waiting.sort();
    assert_eq!(shown, waiting, "every waiting action, once");

    // The open vote's bar, then a ballot through the API: the bar changes without a reload.
    let yes = count_script(&open_id, "yes");
    let no = count_script(&open_id, "no");
    assert_eq!(until(&c, "the yes bar", &yes).await, json!("1 (100.0%)"));
    c.execute("window.__notReloaded = true; return true;", vec![])
        .await
        .unwrap();
    // The page polls nothing: the bar moves because the vote announces the ballot on the
    // event stream, which the page follows.
    until(
        &c,
        "the event stream",
        "return document.getElementById('live-line').textContent.startsWith('Live updates on');",
    )
    .await;
    cast(&node, &open, "ben", "no").await;
    until(
        &c,
        "the no bar to move",
        &format!("const t = (() => {{ {no} }})(); return t === '1 (50.0%)' ? t : null;"),
    )
    .await;
    let live = until(
        &c,
        "the ballot event",
        "return document.getElementById('live-line').textContent;",
    )
    .await;
    assert!(
        live.as_str().unwrap().contains("ballots_changed (town)"),
        "{live}"
    );
    assert_eq!(
        c.execute("return window.__notReloaded === true;", vec![])
            .await
            .unwrap(),
        json!(true),
        "the page reloaded"
    );
    let countdown = until(
        &c,
        "the countdown",
        &format!("const e = document.querySelector('#vote-{open_id} .countdown'); return e && e.textContent;"),
    )
    .await;
    assert!(
        countdown.as_str().unwrap().starts_with("closes in 0h 59m"),
        "{countdown}"
    );
    // Bars are drawn to scale: the closed vote's `no` (1) is half its `yes` (2). (The page's
    // CSP allows no style attributes, so this checks the widths really apply.)
    let width = |option: &str| {
        format!("const e = document.querySelector('#vote-{closed_id} [data-option=\"{option}\"] .bar > span'); return e && e.getBoundingClientRect().width;")
    };
    let yes_w = until(&c, "the yes bar width", &width("yes"))
        .await
        .as_f64()
        .unwrap();
    let no_w = until(&c, "the no bar width", &width("no"))
        .await
        .as_f64()
        .unwrap();
    assert!((no_w / yes_w - 0.5).abs() < 0.05, "bars {yes_w} and {no_w}");

    // The closed vote verifies in the browser.
    c.find(Locator::Css(&format!("#vote-{closed_id} button.verify")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = until(
        &c,
        "the verify result",
        &format!("const e = document.querySelector('#vote-{closed_id} .verify-result'); return e && !e.textContent.startsWith('Verifying') && e.textContent;"),
    )
    .await;
    assert!(
        result.as_str().unwrap().starts_with("verified: 3 ballots"),
        "{result}"
    );

    // The audit log lists the community's changes; the cluster map has this node.
    let cluster = until(
        &c,
        "the cluster map",
        "return document.getElementById('cluster-rows').textContent;",
    )
    .await;
    assert!(cluster.as_str().unwrap().contains("this node"), "{cluster}");

    // A screenshot for people to look at.
    let png = c.screenshot().await.unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("dashboard.png");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("dashboard screenshot: {}", shot.display());
    if let Ok(to) = std::env::var("AGORA_DASHBOARD_SCREENSHOT") {
        std::fs::write(to, &png).unwrap();
    }

    // Through a stand-in that changes one ballot, the same view says it does not verify.
    let proxy = tampering_proxy(base.trim_end_matches('/').to_string(), closed.clone()).await;
    open_town(&c, &proxy, &viewer).await;
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(&format!("#vote-{closed_id} button.verify")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = until(
        &c,
        "the verify result through the stand-in",
        &format!("const e = document.querySelector('#vote-{closed_id} .verify-result'); return e && !e.textContent.startsWith('Verifying') && e.textContent;"),
    )
    .await;
    let text = result.as_str().unwrap();
    assert!(text.starts_with("NOT verified"), "{text}");
    assert!(text.contains("receipt of ana"), "{text}");

    // The stand-in refuses the event stream, as the node does a token limited to some
    // communities: the page says so and re-reads the votes instead, so the bars still follow.
    until(
        &c,
        "the stream refused",
        "return document.getElementById('live-line').textContent.startsWith('Live updates unavailable (403)');",
    )
    .await;
    until(
        &c,
        "the yes bar",
        &format!("const t = (() => {{ {yes} }})(); return t === '1 (50.0%)' ? t : null;"),
    )
    .await;
    cast(&node, &open, "cleo", "yes").await;
    until(
        &c,
        "the yes bar to move without the stream",
        &format!("const t = (() => {{ {yes} }})(); return t === '2 (66.7%)' ? t : null;"),
    )
    .await;
    c.close().await.unwrap();
}
