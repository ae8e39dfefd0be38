//! Every alert rule has a runbook: `docs/runbooks/<rule>.md` with what it means, what to
//! check and what to do.

use std::path::Path;

#[test]
fn every_rule_has_a_runbook_with_its_three_sections() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/runbooks");
    let mut rules: Vec<String> = vigil_config::default_rules()
        .into_iter()
        .map(|r| r.name)
        .collect();
    rules.extend(vigil_alert::BUILT_IN_RULES.iter().map(|r| (*r).to_string()));
    let mut missing = Vec::new();
    for rule in &rules {
        let path = dir.join(format!("{rule}.md"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for section in ["## What it means", "## Check", "## Do"] {
                    if !text.contains(section) {
                        missing.push(format!("{}: no \"{section}\"", path.display()));
                    }
                }
            }
            Err(e) => missing.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        missing.is_empty(),
        "rules without a runbook:\n{}",
        missing.join("\n")
    );
    assert!(rules.len() >= 19, "{rules:?}");
}
