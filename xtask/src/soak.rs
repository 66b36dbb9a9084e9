//! `cargo xtask soak` (issue #9; in progress).

pub fn run(_args: &[String]) -> crate::Result {
    Err("`cargo xtask soak` is being written (issue #9)".into())
}
