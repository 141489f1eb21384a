//! config.json → everything `create` checks before it makes anything (hutch::fuzzing::config).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hutch::fuzzing::config(data);
});
