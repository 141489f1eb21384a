//! Defence against CVE-2019-5736: a process in the container must never be able to open the
//! host's hutch binary for writing through `/proc/<pid>/exe`.
//!
//! The container's init is a fork of hutch, so until it execs the user's program its
//! `/proc/self/exe` is hutch's executable; a container image whose entrypoint is
//! `#!/proc/self/exe` would even make the kernel run that file inside the container. Commands
//! that put a process into a container (`create`, `run`) therefore first re-execute hutch from a
//! sealed memfd copy: the copy is what every container-side process sees, and the seals make it
//! impossible to write, grow or shrink. Commands that never enter a container (`state`, `kill`,
//! `start`, …) skip this and stay cheap.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

const REQUIRED_SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Returns when hutch runs from a sealed copy; otherwise replaces this process with one.
pub fn ensure_sealed() -> Result<()> {
    let exe = File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    if is_sealed(&exe) {
        return Ok(());
    }
    let memfd = memfd_create(
        c"hutch",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .context("memfd_create for the sealed hutch binary")?;
    let mut copy = File::from(memfd);
    let mut source = exe;
    std::io::copy(&mut source, &mut copy).context("copying hutch into a sealed memfd")?;
    fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(REQUIRED_SEALS))
        .context("sealing the hutch memfd")?;
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()))
        .collect::<Result<_, _>>()
        .context("argument contains a NUL byte")?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()
        .context("environment contains a NUL byte")?;
    nix::unistd::fexecve(copy.as_fd(), &args, &env).context("re-executing sealed hutch")?;
    Ok(())
}

fn is_sealed(exe: &File) -> bool {
    match fcntl(exe.as_fd(), FcntlArg::F_GET_SEALS) {
        Ok(bits) => SealFlag::from_bits_truncate(bits).contains(REQUIRED_SEALS),
        Err(_) => false,
    }
}
