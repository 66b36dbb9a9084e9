//! Logging through Envoy's own log (`[dynamic_modules]` logger id), so module messages land in
//! Envoy's log file with Envoy's levels.

use crate::abi;

/// Log levels Envoy knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl Level {
    fn raw(self) -> abi::LogLevel {
        match self {
            Level::Trace => abi::LOG_TRACE,
            Level::Debug => abi::LOG_DEBUG,
            Level::Info => abi::LOG_INFO,
            Level::Warn => abi::LOG_WARN,
            Level::Error => abi::LOG_ERROR,
            Level::Critical => abi::LOG_CRITICAL,
        }
    }
}

/// Whether Envoy would print a message at `level` (cheap; skip formatting when false).
pub fn enabled(level: Level) -> bool {
    // SAFETY: plain value in, bool out; callable from any thread.
    unsafe { abi::envoy_dynamic_module_callback_log_enabled(level.raw()) }
}

/// Write `message` to Envoy's log at `level`.
pub fn log(level: Level, message: &str) {
    // SAFETY: the buffer borrows `message` for the duration of the call; Envoy copies it.
    unsafe {
        abi::envoy_dynamic_module_callback_log(
            level.raw(),
            abi::ModuleBuffer::of(message.as_bytes()),
        )
    }
}

pub fn error(message: &str) {
    log(Level::Error, message)
}
pub fn warn(message: &str) {
    log(Level::Warn, message)
}
pub fn info(message: &str) {
    log(Level::Info, message)
}
pub fn debug(message: &str) {
    if enabled(Level::Debug) {
        log(Level::Debug, message)
    }
}
