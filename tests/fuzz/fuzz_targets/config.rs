//! The config loader on any text: never panics; every error names a key path or the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = otlp_gateway::config::parse_str(text) {
        assert!(!errors.0.is_empty());
    }
});
