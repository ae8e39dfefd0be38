//! Errors never vanish: no `let _ =` (or `let _: T =`) and no statement-ending `.ok();` in
//! non-test code. A deliberate exception needs a named binding and a comment.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            // Integration tests and benches may discard results on purpose.
            if !matches!(name, "tests" | "benches" | "target") {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_swallowed_results_in_non_test_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for top in ["crates", "agents", "examples"] {
        rust_files(&root.join(top), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            // Unit tests live at the bottom of each file, after `#[cfg(test)]`.
            if code.starts_with("#[cfg(test)]") {
                break;
            }
            if code.starts_with("//") {
                continue;
            }
            if code.contains("let _ =")
                || code.contains("let _:")
                || code.trim_end().ends_with(".ok();")
            {
                found.push(format!("{}:{}: {}", f.display(), i + 1, code.trim()));
            }
        }
    }
    assert!(found.is_empty(), "results discarded:\n{}", found.join("\n"));
}
