//! `cargo xtask fuzz` (issue #9; in progress).

pub fn run(_args: &[String]) -> crate::Result {
    Err("`cargo xtask fuzz` is being written (issue #9)".into())
}
