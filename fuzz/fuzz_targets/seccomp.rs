//! An OCI `linux.seccomp` object → the BPF compiler (hutch::fuzzing::seccomp).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hutch::fuzzing::seccomp(data);
});
