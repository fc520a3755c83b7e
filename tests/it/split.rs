//! Split models on disk, without a database: the test model cut into parts by the test kit (as
//! llama.cpp's `gguf-split` cuts one) reads back as the whole model, a part missing is an
//! error, and the engine's install order and count of parts in place follow the files.

use localbrain::brain::gguf;
use localbrain::catalog::{ModelEntry, Part, split_file_name};
use localbrain::engine::files;
use testkit::catalog::smol_entry;

#[test]
fn the_parts_read_back_as_the_whole_model() {
    let whole = gguf::read(&testkit::test_model_path()).unwrap();
    let paths = testkit::gguf::split_model_paths(3);
    let split = gguf::read(&paths[0]).unwrap();
    assert_eq!((whole.parts, split.parts), (1, 3));
    assert_eq!(split.facts, whole.facts, "every part's tensors count");
    assert_eq!(split.layout, whole.layout);
    assert_eq!(split.chat_template, whole.chat_template);
    // The first part alone (what a Range request reads before a download) knows it is one of three.
    let first = std::fs::read(&paths[0]).unwrap();
    let prefix = gguf::read_prefix(&first, first.len() as u64).unwrap().unwrap();
    assert!(prefix.parts == 3 && prefix.facts.parameters < whole.facts.parameters);

    // Without its last part the model cannot run, and says so.
    let dir = tempfile::tempdir().unwrap();
    for p in &paths[..2] {
        std::fs::copy(p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    match gguf::read(&dir.path().join(paths[0].file_name().unwrap())) {
        Err(gguf::GgufError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}"),
        other => panic!("a missing part is an error: {other:?}"),
    }
}

#[test]
fn parts_install_last_part_first_and_count_in_order() {
    let sizes = [100u64, 200, 300];
    let parts: Vec<Part> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size_bytes)| Part {
            url: format!("http://127.0.0.1:9/p{i}.gguf"),
            sha256: testkit::sha256_hex(&[i as u8]),
            size_bytes,
        })
        .collect();
    let m = ModelEntry {
        url: parts[0].url.clone(),
        sha256: parts[0].sha256.clone(),
        size_bytes: sizes.iter().sum(),
        parts,
        ..smol_entry("http://127.0.0.1:9/unused.gguf")
    };
    let dir = tempfile::tempdir().unwrap();
    let order = files::install_order(dir.path(), &m);
    let names: Vec<String> = order.iter().map(|(_, p, _)| p.file_name().unwrap().to_string_lossy().into()).collect();
    let name = |k| split_file_name(&m.id, k, 3);
    assert_eq!(names, [name(2), name(3), name(1)], "the first part last");
    assert_eq!(order.iter().map(|(_, _, base)| *base).collect::<Vec<_>>(), [0, 200, 500]);
    assert_eq!(files::model_path(dir.path(), &m), dir.path().join(name(1)));

    assert_eq!(files::parts_in_place(dir.path(), &m), 0);
    std::fs::write(dir.path().join(name(3)), vec![0; 300]).unwrap();
    assert_eq!(files::parts_in_place(dir.path(), &m), 0, "part 3 without part 2 is not counted");
    std::fs::write(dir.path().join(name(2)), vec![0; 199]).unwrap();
    assert_eq!(files::parts_in_place(dir.path(), &m), 0, "a part short of its size is not in place");
    std::fs::write(dir.path().join(name(2)), vec![0; 200]).unwrap();
    assert_eq!(files::parts_in_place(dir.path(), &m), 500);
    // One file: nothing before it.
    let one = smol_entry("http://127.0.0.1:9/unused.gguf");
    assert_eq!(files::install_order(dir.path(), &one).len(), 1);
    assert_eq!(files::parts_in_place(dir.path(), &one), 0);
}
