//! Replays the seed corpus and the crash regressions through every fuzz target on stable
//! Rust: the quick smoke run that `cargo xtask test` includes.

use std::path::Path;
use switchyard_fuzz_targets::{seed_corpus, target, TARGETS};

fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn every_target_has_seeds_and_survives_them() {
    let seeds = seed_corpus(repo_root()).expect("read the seed corpus");
    for (name, _) in TARGETS {
        let n = seeds.iter().filter(|s| s.target == *name).count();
        assert!(n >= 3, "target {name} has only {n} seeds");
    }
    for s in &seeds {
        let f = target(s.target).expect("known target");
        let run = std::panic::catch_unwind(|| f(&s.data));
        assert!(run.is_ok(), "target {} failed on seed {}", s.target, s.name);
    }
}

#[test]
fn every_seed_cut_short_and_prefixed_survives() {
    // Cheap mutations of every seed: truncations and a flipped byte, the shapes a fuzzer
    // tries first.
    let seeds = seed_corpus(repo_root()).expect("read the seed corpus");
    for s in &seeds {
        let f = target(s.target).expect("known target");
        let len = s.data.len();
        for cut in [len / 3, len / 2, len.saturating_sub(1)] {
            let run = std::panic::catch_unwind(|| f(&s.data[..cut]));
            assert!(
                run.is_ok(),
                "target {} failed on seed {} cut at {cut}",
                s.target,
                s.name
            );
        }
        let mut flipped = s.data.clone();
        if let Some(b) = flipped.get_mut(len / 2) {
            *b ^= 0x22;
        }
        let run = std::panic::catch_unwind(|| f(&flipped));
        assert!(
            run.is_ok(),
            "target {} failed on seed {} with a flipped byte",
            s.target,
            s.name
        );
    }
}
