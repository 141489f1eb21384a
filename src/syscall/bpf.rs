//! bpf(2): loading an eBPF program and attaching it to a cgroup (the v2 device filter).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One eBPF instruction (struct bpf_insn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
pub const CGROUP_DEVICE: u32 = 6;
pub const F_ALLOW_MULTI: u32 = 2;

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;

/// The BPF_PROG_LOAD variant of union bpf_attr, zero-padded to a size the kernel accepts.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    _rest: [u64; 8],
}

/// The BPF_PROG_ATTACH variant of union bpf_attr.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    _rest: [u32; 11],
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<i64> {
    // SAFETY: `attr` is one of the #[repr(C)] bpf_attr variants above, zero-padded, passed
    // with its own size; every pointer stored in it (instructions, license, log buffer) is
    // borrowed by the caller for the whole call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// BPF_PROG_LOAD of `insns` as a `prog_type` program named `name` (at most 15 bytes kept).
/// With `log`, the verifier writes its log there (NUL-terminated).
pub fn prog_load(
    prog_type: u32,
    insns: &[Insn],
    license: &CStr,
    name: &str,
    log: Option<&mut [u8]>,
) -> io::Result<OwnedFd> {
    let insn_cnt = u32::try_from(insns.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut prog_name = [0u8; 16];
    let len = name.len().min(prog_name.len() - 1);
    prog_name[..len].copy_from_slice(&name.as_bytes()[..len]);
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name,
        ..Default::default()
    };
    if let Some(log) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        attr.log_buf = log.as_mut_ptr() as u64;
    }
    let fd = bpf(BPF_PROG_LOAD, &mut attr)?;
    // SAFETY: a successful BPF_PROG_LOAD returns a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_PROG_ATTACH of the loaded program `prog` to `target` (a cgroup directory).
pub fn prog_attach(
    target: BorrowedFd,
    prog: BorrowedFd,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: target.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}
