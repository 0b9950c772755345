//! Every feature-gated public item shows up in the generated documentation:
//! each crate with features asks docs.rs to build with all of them and to
//! mark what each item needs (`doc(cfg)`).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::Path;

#[test]
fn crates_with_features_document_them_all() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        if !manifest.contains("\n[features]") {
            continue;
        }
        let docs_rs = manifest
            .split("\n[package.metadata.docs.rs]")
            .nth(1)
            .unwrap_or_else(|| panic!("{} has no docs.rs metadata", dir.display()));
        let section = docs_rs.split("\n[").next().unwrap();
        assert!(section.contains("all-features = true"), "{}", dir.display());
        assert!(
            section.contains(r#""--cfg", "docsrs""#),
            "{}",
            dir.display()
        );
        let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
        assert!(
            lib.contains("#![cfg_attr(docsrs, feature(doc_cfg))]"),
            "{}",
            dir.display()
        );
        checked += 1;
    }
    assert!(checked >= 1, "no crate with features found");
}

#[test]
fn recording_observer_is_marked_with_its_feature() {
    let observe = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../observe/src/lib.rs"
    ))
    .unwrap();
    assert!(
        observe.contains(
            "#[cfg_attr(docsrs, doc(cfg(feature = \"test-util\")))]\npub use recording::"
        )
    );
}
