//! What the load generators share: one raw hyper HTTP/1 keep-alive connection per task, and a
//! process's CPU from `/proc`, so each figure can say what the node and the client each spent.
//! Included with `#[path]` by `workload.rs` and `governance_bench.rs`.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// Clock ticks per second: `getconf CLK_TCK` is 100 on every Linux this runs on.
pub const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU of a process, in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`);
/// `pid` may be `self`.
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are split from its `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Bytes the process sent to the block layer (`write_bytes` in `/proc/<pid>/io`): what its
/// flushes cost the disk, apart from its sockets.
pub fn disk_write_bytes(pid: &str) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))?
        .trim()
        .parse()
        .ok()
}

/// One keep-alive HTTP/1 connection to the node. A raw hyper connection rather than reqwest:
/// the client shares the node's two cores, and reqwest's pool, redirect and URL handling cost
/// about 13 µs of CPU per request, twice what wrk spends.
pub async fn connect(host: &str) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to the node");
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP/1 handshake");
    tokio::spawn(conn);
    sender
}
