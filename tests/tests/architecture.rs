//! The workspace's shape, checked from `cargo metadata` (issue 9): dependencies point one
//! way, `vigie-domain` ← `vigie-pipeline` ← stage crates ← `vigie-daemon`, and no stage
//! crate depends on another, so each can be rewritten (or moved to its own process) without
//! touching the rest. What a stage needs of another goes through a small trait in
//! `vigie-domain` (the detector's and the index's need for the analyzer is
//! `vigie_domain::QueryAnalyzer`). Dev-dependencies are free: tests use the real analyzer.

use std::collections::BTreeMap;
use std::process::Command;

/// The crates that each own one stage of the pipeline.
const STAGE_CRATES: [&str; 6] = [
    "vigie-source-kafka",
    "vigie-tokenize",
    "vigie-index",
    "vigie-detect",
    "vigie-alert",
    // The outbox stage: it takes the policy's notifications as `vigie_domain::alert` nouns.
    "vigie-alert-delivery",
];

/// What a stage crate may depend on among the workspace's crates.
const SHARED_CRATES: [&str; 2] = ["vigie-domain", "vigie-pipeline"];

/// Returns each workspace crate's normal (not dev, not build) dependencies on other
/// workspace crates.
fn workspace_dependencies() -> BTreeMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let members: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    packages
        .iter()
        .map(|package| {
            let dependencies = package["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap())
                .filter(|name| members.contains(name))
                .map(str::to_owned)
                .collect();
            (package["name"].as_str().unwrap().to_owned(), dependencies)
        })
        .collect()
}

#[test]
fn issue_9_no_stage_crate_depends_on_another() {
    let dependencies = workspace_dependencies();
    for stage in STAGE_CRATES {
        let own = dependencies
            .get(stage)
            .unwrap_or_else(|| panic!("{stage} is a workspace member"));
        let others: Vec<&String> = own
            .iter()
            .filter(|d| !SHARED_CRATES.contains(&d.as_str()))
            .collect();
        assert!(
            others.is_empty(),
            "{stage} depends on {others:?}; a stage crate may depend only on {SHARED_CRATES:?} \
             (put what it needs behind a trait in vigie-domain)"
        );
    }
    // The shared crates depend on no stage, and the domain on nothing of ours.
    assert!(dependencies["vigie-domain"].is_empty());
    assert!(dependencies["vigie-pipeline"]
        .iter()
        .all(|d| d == "vigie-domain"));
}
