//! The catalog as the server uses it: a replacement file (what LOCALBRAIN_CATALOG points at)
//! loaded, validated and recommended from, and the JSON the UI receives.

use localbrain::catalog::{Catalog, CatalogError};
use localbrain::hardware::{self, HardwareProfile};
use localbrain::recommend::{self, Fit, RamSource};
use localbrain::units::GIB;

/// Two entries, the second mirrored: a small air-gapped mirror's catalog.
const MIRROR_CATALOG: &str = r#"
[[models]]
id = "small-q4_k_m"
name = "Small"
family = "test"
params_b = 0.5
quant = "Q4_K_M"
url = "http://127.0.0.1:9/small.gguf"
sha256 = "6eb923e7d26e9cea28811e1a8e852009b21242fb157b26149d3b188f3a8c8653"
size_bytes = 397808192
min_ram_gb = 1
context_length = 32768
license = "apache-2.0"
quality = 10

[[models]]
id = "big-q4_k_m"
name = "Big"
family = "test"
params_b = 8.0
quant = "Q4_K_M"
url = "http://127.0.0.1:9/big.gguf"
mirrors = ["http://127.0.0.2:9/big.gguf"]
sha256 = "f2be3e1a239c12c9f3f01a962b11fb2807f8032fdb63b0a5502ea42ddef55e44"
size_bytes = 4920739168
min_ram_gb = 8
context_length = 131072
license = "llama3.1"
quality = 20
"#;

#[test]
fn a_replacement_catalog_file_is_loaded_and_recommended_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.toml");
    std::fs::write(&path, MIRROR_CATALOG).unwrap();
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
    let placeholder =
        MIRROR_CATALOG.replace("f2be3e1a239c12c9f3f01a962b11fb2807f8032fdb63b0a5502ea42ddef55e44", &"0".repeat(64));
    std::fs::write(&path, placeholder).unwrap();
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
