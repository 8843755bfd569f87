//! Tidy checks over the source tree, run with every `cargo test`: every Rust file says what it
//! is for in a `//!` header, crates depend on each other only in the allowed direction, no
//! `println!` or `dbg!` hides in library code, and the README's error table is the code's.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

const CRATES: [&str; 6] = [
    "storage",
    "runtime",
    "plugins",
    "governance",
    "actors",
    "gateway",
];

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let mut files = Vec::new();
    for dir in CRATES.iter().map(|c| root().join(c)).chain([
        root().join("src"),
        root().join("tests"),
        root().join("examples"),
    ]) {
        rust_files(&dir, &mut files);
    }
    assert!(files.len() > 40, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|p| {
            let text = fs::read_to_string(p).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            !first.starts_with("//!")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! header: {missing:?}"
    );
}

/// Every dependency of a workspace package on another, as `cargo metadata` resolves them
/// (workspace-inherited entries, renamed ones, target-specific tables and build
/// dependencies included): `(from, to, kind)` with kind `normal`, `build` or `dev`.
fn crate_edges() -> Vec<(String, String, String)> {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let members: Vec<String> = meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut edges = Vec::new();
    for p in meta["packages"].as_array().expect("packages") {
        let from = p["name"].as_str().unwrap_or_default().to_string();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let to = d["name"].as_str().unwrap_or_default().to_string();
            if members.contains(&to) {
                let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                edges.push((from.clone(), to, kind));
            }
        }
    }
    edges
}

#[test]
fn crates_depend_only_in_the_allowed_direction() {
    // agora → gateway → actors → runtime → storage; gateway and actors → plugins; actors →
    // governance (the pure core) → plugins (the vote core and its canonical JSON only);
    // gateway → governance for the OpenAPI document's change list and limits.
    let allowed: [(&str, &[&str]); 7] = [
        ("agora-storage", &[]),
        ("agora-plugins", &[]),
        ("agora-governance", &["agora-plugins"]),
        ("agora-runtime", &["agora-storage"]),
        (
            "agora-actors",
            &[
                "agora-runtime",
                "agora-storage",
                "agora-plugins",
                "agora-governance",
            ],
        ),
        (
            "agora-gateway",
            &[
                "agora-actors",
                "agora-runtime",
                "agora-plugins",
                "agora-governance",
            ],
        ),
        (
            "agora",
            &[
                "agora-gateway",
                "agora-actors",
                "agora-runtime",
                "agora-storage",
                "agora-plugins",
                "agora-governance",
            ],
        ),
    ];
    let edges = crate_edges();
    assert!(
        edges
            .iter()
            .any(|(f, t, _)| f == "agora-gateway" && t == "agora-actors"),
        "no edges found: {edges:?}"
    );
    // Tests may build on any crate below theirs, never on one above.
    let rank = |name: &str| allowed.iter().position(|(c, _)| *c == name);
    for (from, to, kind) in &edges {
        let (Some(f), Some(t)) = (rank(from), rank(to)) else {
            panic!("{from} → {to}: a workspace crate this test does not know");
        };
        let ok = if kind == "dev" {
            t < f
        } else {
            allowed[f].1.contains(&to.as_str())
        };
        assert!(
            ok,
            "{from} depends on {to} ({kind}), against the allowed direction"
        );
    }
}

#[test]
fn the_readme_error_table_is_the_error_codes() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- error-codes")
        .expect("the README has an error table");
    let end = readme
        .find("<!-- /error-codes -->")
        .expect("the table ends");
    let table: Vec<&str> = readme[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .collect();
    let expected: Vec<String> = agora_plugins::ErrorCode::ALL
        .iter()
        .map(|c| format!("| `{}` | {} | {} |", c.as_str(), c.status(), c.meaning()))
        .collect();
    assert_eq!(
        table,
        expected,
        "the README's error table differs from ErrorCode; it should read:\n{}",
        expected.join("\n")
    );
}

#[test]
fn library_code_does_not_print() {
    let mut files = Vec::new();
    for c in CRATES {
        rust_files(&root().join(c).join("src"), &mut files);
    }
    for p in files {
        let text = fs::read_to_string(&p).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains("println!") && !code.contains("dbg!("),
                "{}:{} prints; use tracing",
                p.display(),
                i + 1
            );
        }
    }
}
