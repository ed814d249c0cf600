//! Replays every fuzz corpus and saved crash (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) through the same entry points the fuzz
//! targets call, on stable Rust: whatever a fuzzer once found stays fixed.

use crate::support::root;

#[test]
fn every_corpus_input_and_saved_crash_runs_clean() {
    let mut ran = 0;
    for kind in ["corpus", "artifacts"] {
        let dir = root().join("fuzz").join(kind);
        let Ok(targets) = std::fs::read_dir(&dir) else {
            continue;
        };
        for target in targets {
            let target = target.unwrap();
            let name = target.file_name().to_string_lossy().into_owned();
            for file in std::fs::read_dir(target.path()).unwrap() {
                let path = file.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                let result =
                    std::panic::catch_unwind(|| churnguard::fuzz_harness::run(&name, &bytes));
                assert!(result.is_ok(), "{} panics", path.display());
                ran += 1;
            }
        }
    }
    assert!(
        ran >= 15,
        "only {ran} corpus inputs: is fuzz/corpus missing?"
    );
}
