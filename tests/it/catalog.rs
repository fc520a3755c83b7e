//! The catalog as the server uses it: a replacement file (what LOCALBRAIN_CATALOG points at)
//! loaded, validated and recommended from, and the JSON the UI receives.

use localbrain::catalog::{Catalog, CatalogError, ModelEntry};
use localbrain::hardware::{self, HardwareProfile};
use localbrain::recommend::{self, Fit, RamSource};
use localbrain::units::GIB;
use testkit::catalog::entry;

/// Two entries, the second mirrored: a small air-gapped mirror's catalog.
fn mirror_catalog() -> Vec<ModelEntry> {
    let small = ModelEntry {
        name: "Small".into(),
        params_b: 0.5,
        context_length: 32768,
        quality: 10,
        ..entry(
            "small-q4_k_m",
            &["http://127.0.0.1:9/small.gguf".into()],
            397808192,
            "6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653",
        )
    };
    let big = ModelEntry {
        name: "Big".into(),
        params_b: 8.0,
        min_ram_gb: 8,
        context_length: 131072,
        license: "llama3.1".into(),
        quality: 20,
        ..entry(
            "big-q4_k_m",
            &["http://127.0.0.1:9/big.gguf".into(), "http://127.0.0.2:9/big.gguf".into()],
            4920739168,
            "f2be3e1a239c12c9f3f01a962b11fb2807f8032fdb63b0a5502ea42ddef55e44",
        )
    };
    vec![small, big]
}

#[test]
fn a_replacement_catalog_file_is_loaded_and_recommended_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    testkit::catalog::write(&path, mirror_catalog());
    let catalog = Catalog::load(Some(&path)).unwrap();
    assert_eq!(catalog.models.len(), 2);
    let big = catalog.get("big-q4_k_m").unwrap();
    assert_eq!(big.urls().collect::<Vec<_>>(), ["http://127.0.0.1:9/big.gguf", "http://127.0.0.2:9/big.gguf"]);

    let cases = [(4, Some("small-q4_k_m")), (8, Some("big-q4_k_m")), (32, Some("big-q4_k_m"))];
    for (gb, want) in cases {
        let hw =
            HardwareProfile { total_ram_bytes: Some(gb * GIB), free_disk_bytes: Some(100 * GIB), ..Default::default() };
        let r = recommend::recommend(&catalog.models, &hw);
        assert_eq!(r.model_id.as_deref(), want, "{gb} GB: {}", r.reason);
        assert_eq!(r.ram_source, RamSource::Server);
    }
}

#[test]
fn a_bad_replacement_file_is_refused_naming_file_and_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    let mut placeholder = mirror_catalog();
    placeholder[1].sha256 = "0".repeat(64);
    testkit::catalog::write(&path, placeholder);
    let err = Catalog::load(Some(&path)).unwrap_err();
    assert!(matches!(err, CatalogError::InFile { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "catalog {}: catalog entry 2 (\"big-q4_k_m\"): sha256 is a placeholder (a repeating or \
             low-variety pattern), not a real hash",
            path.display()
        )
    );

    let err = Catalog::load(Some(&dir.path().join("absent.toml"))).unwrap_err();
    assert!(matches!(err, CatalogError::Read { .. }), "{err:?}");
    assert!(err.to_string().ends_with("absent.toml"), "{err}");
}

/// What `POST /api/catalog` assembles: this machine's real profile against the shipped catalog.
#[test]
fn this_machine_gets_a_verdict_for_every_shipped_model() {
    let catalog = Catalog::load(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hw = hardware::detect(&dir.path().join("models"));
    assert!(hw.total_ram_bytes.is_some() && hw.free_disk_bytes.is_some(), "{hw:?}");
    let r = recommend::recommend(&catalog.models, &hw);
    assert_eq!(r.ram_source, RamSource::Server);
    assert_eq!(
        r.fits.iter().map(|f| f.model_id.as_str()).collect::<Vec<_>>(),
        catalog.models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>()
    );
    match &r.model_id {
        Some(id) => assert_eq!(r.fits.iter().find(|f| &f.model_id == id).unwrap().fit, Fit::Fits),
        None => assert!(r.reason.starts_with("nothing in the catalog fits"), "{}", r.reason),
    }

    let json = serde_json::json!({ "models": catalog.models, "hardware": hw, "recommendation": r });
    let back: Vec<localbrain::catalog::ModelEntry> = serde_json::from_value(json["models"].clone()).unwrap();
    assert_eq!(back, catalog.models);
    assert_eq!(serde_json::from_value::<HardwareProfile>(json["hardware"].clone()).unwrap(), hw);
    assert_eq!(serde_json::from_value::<recommend::Recommendation>(json["recommendation"].clone()).unwrap(), r);
}
