//! The x86 ABIs one filter serves on an x86_64 kernel: which ones a profile asks for, the
//! tokens the kernel reports for them, and each syscall name's number on each (looked up in
//! the generated table, `syscalls.rs`).

use anyhow::{bail, Result};
use oci_spec::runtime::{Arch, LinuxSeccomp};

use super::syscalls;

/// `AUDIT_ARCH_*` values the kernel reports in `seccomp_data.arch` (linux/audit.h).
pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(super) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// x32 syscalls are x86_64 syscalls with this bit set in the number.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A row of the syscall table: the name, its numbers on x86_64, i386 and x32 (-1: absent),
/// and its i386 multiplexed form (see [`multiplexed`]).
pub(super) type Row = (&'static str, [i16; 3], u8);

/// The x86 ABIs one filter can serve on an x86_64 kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Abi {
    X86_64,
    I386,
    X32,
}

impl Abi {
    /// Column in `syscalls::SYSCALLS`.
    fn column(self) -> usize {
        match self {
            Abi::X86_64 => 0,
            Abi::I386 => 1,
            Abi::X32 => 2,
        }
    }
    /// The number the kernel puts in `seccomp_data.nr` for a syscall-table row, if this ABI
    /// has the syscall.
    pub(super) fn number(self, row: &[i16; 3]) -> Option<u32> {
        let nr = u32::try_from(row[self.column()]).ok()?;
        Some(if self == Abi::X32 {
            nr | X32_SYSCALL_BIT
        } else {
            nr
        })
    }
    #[cfg(test)]
    pub(super) fn syscall(self, name: &str) -> Option<u32> {
        let (_, row) = lookup(name)?;
        self.number(&row.1)
    }
    /// Arguments are 64-bit only on x86_64; libseccomp compares the low word elsewhere.
    pub(super) fn wide(self) -> bool {
        self == Abi::X86_64
    }
    /// Whether the profile lists this ABI by name (`SCMP_ARCH_NATIVE` does not count): runc's
    /// ENOSYS stub covers only those.
    pub(super) fn listed(self, seccomp: &LinuxSeccomp) -> bool {
        seccomp.architectures().iter().flatten().any(|a| {
            matches!(
                (a, self),
                (Arch::ScmpArchX86_64, Abi::X86_64)
                    | (Arch::ScmpArchX86, Abi::I386)
                    | (Arch::ScmpArchX32, Abi::X32)
            )
        })
    }
}

/// The ABIs the filter serves: x86_64 first (libseccomp always includes the native arch),
/// then the others in the order `linux.seccomp.architectures` lists them.
pub(super) fn abis(seccomp: &LinuxSeccomp) -> Result<Vec<Abi>> {
    let mut abis = vec![Abi::X86_64];
    for arch in seccomp.architectures().iter().flatten() {
        let abi = match arch {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                // An x86_64 kernel never reports these arches, but libseccomp refuses to mix
                // endiannesses, and so runc refuses the profile.
                if !little_endian(other) {
                    bail!(
                        "linux.seccomp.architectures: {other} is big-endian and cannot share a \
                         filter with x86_64"
                    );
                }
                continue;
            }
        };
        if !abis.contains(&abi) {
            abis.push(abi);
        }
    }
    Ok(abis)
}

/// The little-endian non-x86 arches libseccomp knows.
fn little_endian(arch: &Arch) -> bool {
    matches!(
        arch,
        Arch::ScmpArchArm
            | Arch::ScmpArchAarch64
            | Arch::ScmpArchMipsel
            | Arch::ScmpArchMipsel64
            | Arch::ScmpArchMipsel64n32
            | Arch::ScmpArchPpc64le
            | Arch::ScmpArchRiscv64
    )
}

/// A syscall's row: its numbers on the three ABIs and its i386 multiplexed form (one hash
/// lookup for everything: name lookups are most of the compile time of a large allow-list),
/// with its index in the table, a name's identity for its pseudo syscall number on an ABI
/// that lacks it.
pub(super) fn lookup(name: &str) -> Option<(u32, &'static Row)> {
    let mut hash: u32 = 0x811c_9dc5; // FNV-1a, as hack/seccomp-syscalls/gen.py builds INDEX
    for b in name.bytes() {
        hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    let mask = syscalls::INDEX.len() - 1;
    let mut slot = hash as usize & mask;
    loop {
        let row = usize::from(syscalls::INDEX[slot]).checked_sub(1)?;
        let entry = &syscalls::SYSCALLS[row];
        if entry.0 == name {
            return Some((row as u32, entry));
        }
        slot = (slot + 1) & mask;
    }
}

/// i386's multiplexed form of a socket or SysV IPC call (the table's mux column): the
/// socketcall(2) or ipc(2) syscall number and the call number it takes in argument 0.
pub(super) fn multiplexed(mux: u8) -> Option<(u32, u64)> {
    const SOCKETCALL: u32 = 102;
    const IPC: u32 = 117;
    match mux {
        0 => None,
        1..=100 => Some((SOCKETCALL, u64::from(mux))),
        _ => Some((IPC, u64::from(mux - 100))),
    }
}
