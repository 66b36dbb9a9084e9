//! `write-seeds <repo root> <corpus dir>`: write the seed corpus as one file per input into
//! `<corpus dir>/<target>/` (cargo-fuzz's layout), for `cargo xtask fuzz`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [root, out] = args.as_slice() else {
        eprintln!("usage: write-seeds <repo root> <corpus dir>");
        return ExitCode::from(2);
    };
    let seeds = match switchyard_fuzz_targets::seed_corpus(root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("reading seeds: {e}");
            return ExitCode::FAILURE;
        }
    };
    for s in &seeds {
        let dir = out.join(s.target);
        let name: String = s
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(name), &s.data))
        {
            eprintln!("writing {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    println!("wrote {} seeds to {}", seeds.len(), out.display());
    ExitCode::SUCCESS
}
