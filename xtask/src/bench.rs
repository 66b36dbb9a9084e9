//! `cargo xtask bench` (issue #10; in progress).

pub fn run(_args: &[String]) -> crate::Result {
    Err("`cargo xtask bench` is being written (issue #10)".into())
}
