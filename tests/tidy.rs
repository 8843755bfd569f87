//! Tidy checks over the source tree, run with every `cargo test`: every Rust file says what it
//! is for in a `//!` header, crates depend on each other only in the allowed direction, and no
//! `println!` or `dbg!` hides in library code.

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

#[test]
fn crates_depend_only_in_the_allowed_direction() {
    // gateway → actors → runtime, storage, plugins; runtime → storage; governance → plugins
    // (the vote core and its canonical JSON only).
    let allowed: [(&str, &[&str]); 6] = [
        ("storage", &[]),
        ("plugins", &[]),
        ("governance", &["agora-plugins"]),
        ("runtime", &["agora-storage"]),
        (
            "actors",
            &["agora-runtime", "agora-storage", "agora-plugins"],
        ),
        ("gateway", &["agora-actors", "agora-runtime"]),
    ];
    for (krate, deps) in allowed {
        let manifest = fs::read_to_string(root().join(krate).join("Cargo.toml")).unwrap();
        let normal = manifest
            .split("\n[")
            .find(|section| section.starts_with("dependencies]"))
            .unwrap_or("");
        for line in normal.lines() {
            let name = line.split(['.', ' ', '=']).next().unwrap_or("");
            if name.starts_with("agora-") {
                assert!(
                    deps.contains(&name),
                    "{krate} depends on {name}, against the allowed direction"
                );
            }
        }
    }
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
