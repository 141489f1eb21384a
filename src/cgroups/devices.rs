//! Device access rules (`linux.resources.devices`).
//!
//! The rules are first run through a small emulation of the v1 devices controller (a default
//! action plus exceptions, as runc's devices emulator does), with runc's default allow-list
//! appended after the config's rules. The result is then written:
//! - on v1 as `a` to devices.allow or devices.deny (the default) followed by each exception;
//! - on v2 as a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the container's cgroup with
//!   `BPF_F_ALLOW_MULTI` (the programs of the parents still apply too).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{write_file, Layout, Manager};

/// Access bits, as the kernel's bpf_cgroup_dev_ctx encodes them.
pub const ACC_MKNOD: u8 = 1;
pub const ACC_READ: u8 = 2;
pub const ACC_WRITE: u8 = 4;
pub const ACC_ALL: u8 = 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevType {
    All,
    Char,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: DevType,
    /// None = any.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    pub access: u8,
}

impl Rule {
    const fn new(
        allow: bool,
        typ: DevType,
        major: Option<i64>,
        minor: Option<i64>,
        access: u8,
    ) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }

    fn is_wildcard(&self) -> bool {
        self.typ == DevType::All && self.major.is_none() && self.minor.is_none()
    }

    /// The v1 devices.allow/deny line, e.g. `c 1:3 rwm`.
    pub fn v1_line(&self) -> String {
        let t = match self.typ {
            DevType::All => "a",
            DevType::Char => "c",
            DevType::Block => "b",
        };
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{t} {}:{} {}",
            n(self.major),
            n(self.minor),
            access_str(self.access)
        )
    }

    /// Whether `self` (a rule) covers the device set of `other`.
    fn covers(&self, other: &Rule) -> bool {
        (self.typ == DevType::All || self.typ == other.typ)
            && (self.major.is_none() || self.major == other.major)
            && (self.minor.is_none() || self.minor == other.minor)
    }
}

pub fn access_str(a: u8) -> String {
    let mut s = String::new();
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

fn parse_access(s: &str, field: &str) -> Result<u8> {
    if s.is_empty() {
        return Ok(ACC_ALL);
    }
    let mut a = 0;
    for c in s.chars() {
        a |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => bail!("{field}.access: invalid access {s:?} (use r, w and m)"),
        };
    }
    Ok(a)
}

/// runc's default rules, appended after the config's (libcontainer/specconv AllowedDevices):
/// mknod of any device, and null, zero, full, random, urandom, tty, ptmx, /dev/pts/* and tun.
pub const DEFAULT_RULES: &[Rule] = &[
    Rule::new(true, DevType::Char, None, None, ACC_MKNOD),
    Rule::new(true, DevType::Block, None, None, ACC_MKNOD),
    Rule::new(true, DevType::Char, Some(1), Some(3), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(8), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(7), ACC_ALL),
    Rule::new(true, DevType::Char, Some(5), Some(0), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(5), ACC_ALL),
    Rule::new(true, DevType::Char, Some(1), Some(9), ACC_ALL),
    Rule::new(true, DevType::Char, Some(136), None, ACC_ALL),
    Rule::new(true, DevType::Char, Some(5), Some(2), ACC_ALL),
    Rule::new(true, DevType::Char, Some(10), Some(200), ACC_ALL),
];

/// The config's rules converted (and checked), followed by the defaults.
pub fn rules_from_spec(list: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let typ = match d.typ() {
            None | Some(LinuxDeviceType::A) => DevType::All,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DevType::Char,
            Some(LinuxDeviceType::B) => DevType::Block,
            Some(LinuxDeviceType::P) => {
                bail!("{field}.type: \"p\" (fifo) is not a device type the devices cgroup controls")
            }
        };
        let num = |v: Option<i64>, what: &str| -> Result<Option<i64>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n)),
                Some(n) => bail!("{field}.{what}: invalid value {n}"),
            }
        };
        let access = parse_access(d.access().as_deref().unwrap_or(""), &field)?;
        let rule = Rule::new(
            d.allow(),
            typ,
            num(d.major(), "major")?,
            num(d.minor(), "minor")?,
            access,
        );
        // "a" with a specific number applies to both kinds.
        if rule.typ == DevType::All && !rule.is_wildcard() {
            out.push(Rule {
                typ: DevType::Char,
                ..rule.clone()
            });
            out.push(Rule {
                typ: DevType::Block,
                ..rule
            });
        } else {
            out.push(rule);
        }
    }
    out.extend(DEFAULT_RULES.iter().cloned());
    Ok(out)
}

/// The state of a v1 devices cgroup: a default and the exceptions to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emulated {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

/// Runs the rules through the v1 semantics, starting from deny-all.
pub fn emulate(rules: &[Rule]) -> Emulated {
    let mut st = Emulated {
        default_allow: false,
        exceptions: Vec::new(),
    };
    for r in rules {
        if r.is_wildcard() {
            st.default_allow = r.allow;
            st.exceptions.clear();
        } else if r.allow == st.default_allow {
            // Same as the default: take the access away from exceptions it covers.
            for e in st.exceptions.iter_mut() {
                if r.covers(e) {
                    e.access &= !r.access;
                }
            }
            st.exceptions.retain(|e| e.access != 0);
        } else if let Some(e) = st
            .exceptions
            .iter_mut()
            .find(|e| e.typ == r.typ && e.major == r.major && e.minor == r.minor)
        {
            e.access |= r.access;
        } else {
            st.exceptions.push(Rule {
                allow: !st.default_allow,
                ..r.clone()
            });
        }
    }
    st
}

pub fn apply(m: &Manager, list: &[LinuxDeviceCgroup]) -> Result<()> {
    let rules = rules_from_spec(list)?;
    let st = emulate(&rules);
    match m.layout {
        Layout::V1 | Layout::Hybrid => {
            let h = m
                .v1("devices")
                .context("the devices cgroup controller is not mounted")?;
            let (first, rest) = if st.default_allow {
                ("devices.allow", "devices.deny")
            } else {
                ("devices.deny", "devices.allow")
            };
            write_file(&h.path.join(first), "a").with_context(|| {
                format!(
                    "linux.resources.devices: writing \"a\" to {}/{first}",
                    h.path.display()
                )
            })?;
            for e in &st.exceptions {
                let line = e.v1_line();
                write_file(&h.path.join(rest), &line).with_context(|| {
                    format!(
                        "linux.resources.devices: writing {line:?} to {}/{rest}",
                        h.path.display()
                    )
                })?;
            }
            Ok(())
        }
        Layout::V2 => {
            let h = m.unified().context("no cgroup v2 directory")?;
            let prog = program(&st);
            attach(&h.path, &prog)
                .context("linux.resources.devices: installing the eBPF device filter")
        }
    }
}

// --------------------------------------------------------------------------------- eBPF ----

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

const BPF_LDX_W_MEM: u8 = 0x61; // BPF_LDX | BPF_W | BPF_MEM
const BPF_ALU_AND_K: u8 = 0x54;
const BPF_ALU_RSH_K: u8 = 0x74;
const BPF_ALU_MOV_K: u8 = 0xb4;
const BPF_ALU_MOV_X: u8 = 0xbc;
const BPF_JMP_JNE_K: u8 = 0x55;
const BPF_JMP_JEQ_K: u8 = 0x15;
const BPF_JMP_EXIT: u8 = 0x95;

const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0xf),
        off,
        imm,
    }
}

/// The device filter: r2 = type, r3 = access, r4 = major, r5 = minor; one block per exception
/// (any mismatch jumps to the next block), then the default.
pub fn program(st: &Emulated) -> Vec<Insn> {
    let mut p = vec![
        ins(BPF_LDX_W_MEM, 2, 1, 0, 0),
        ins(BPF_ALU_AND_K, 2, 0, 0, 0xffff),
        ins(BPF_LDX_W_MEM, 3, 1, 0, 0),
        ins(BPF_ALU_RSH_K, 3, 0, 0, 16),
        ins(BPF_LDX_W_MEM, 4, 1, 4, 0),
        ins(BPF_LDX_W_MEM, 5, 1, 8, 0),
    ];
    for e in &st.exceptions {
        // Jumps are patched to the end of the block (off = 0 placeholder + marker).
        let mut block: Vec<(Insn, bool)> = Vec::new();
        match e.typ {
            DevType::Char => block.push((ins(BPF_JMP_JNE_K, 2, 0, 0, DEVCG_DEV_CHAR), true)),
            DevType::Block => block.push((ins(BPF_JMP_JNE_K, 2, 0, 0, DEVCG_DEV_BLOCK), true)),
            DevType::All => {}
        }
        if e.access != ACC_ALL {
            block.push((ins(BPF_ALU_MOV_X, 1, 3, 0, 0), false));
            if e.allow {
                // Allowed only if every requested bit is in the exception.
                block.push((
                    ins(BPF_ALU_AND_K, 1, 0, 0, i32::from(!e.access & ACC_ALL)),
                    false,
                ));
                block.push((ins(BPF_JMP_JNE_K, 1, 0, 0, 0), true));
            } else {
                // Denied if any requested bit is in the exception.
                block.push((ins(BPF_ALU_AND_K, 1, 0, 0, i32::from(e.access)), false));
                block.push((ins(BPF_JMP_JEQ_K, 1, 0, 0, 0), true));
            }
        }
        if let Some(maj) = e.major {
            block.push((ins(BPF_JMP_JNE_K, 4, 0, 0, maj as i32), true));
        }
        if let Some(min) = e.minor {
            block.push((ins(BPF_JMP_JNE_K, 5, 0, 0, min as i32), true));
        }
        block.push((ins(BPF_ALU_MOV_K, 0, 0, 0, i32::from(e.allow)), false));
        block.push((ins(BPF_JMP_EXIT, 0, 0, 0, 0), false));
        let n = block.len();
        for (i, (mut insn, jump)) in block.into_iter().enumerate() {
            if jump {
                insn.off = (n - i - 1) as i16;
            }
            p.push(insn);
        }
    }
    p.push(ins(BPF_ALU_MOV_K, 0, 0, 0, i32::from(st.default_allow)));
    p.push(ins(BPF_JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Interprets the program for one access (unit tests check it against the emulated rules).
#[cfg(test)]
pub fn run_program(prog: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> Option<u32> {
    let mut r = [0u64; 11];
    let ctx = [((u32::from(access) << 16) | typ as u32), major, minor];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = *prog.get(pc)?;
        let dst = (i.regs & 0xf) as usize;
        let src = (i.regs >> 4) as usize;
        pc += 1;
        match i.code {
            BPF_LDX_W_MEM => {
                if src != 1 {
                    return None;
                }
                r[dst] = u64::from(*ctx.get(i.off as usize / 4)?);
            }
            BPF_ALU_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
            BPF_ALU_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
            BPF_ALU_MOV_K => r[dst] = i.imm as u32 as u64,
            BPF_ALU_MOV_X => r[dst] = r[src] as u32 as u64,
            BPF_JMP_JNE_K => {
                if r[dst] != i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            BPF_JMP_JEQ_K => {
                if r[dst] == i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            BPF_JMP_EXIT => return Some(r[0] as u32),
            _ => return None,
        }
    }
    None
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

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

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<i64> {
    // SAFETY: attr is a properly sized, zero-padded bpf_attr variant that outlives the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Loads the program and attaches it to the cgroup directory `dir`.
pub fn attach(dir: &std::path::Path, prog: &[Insn]) -> Result<()> {
    let license = b"Apache\0";
    let mut log = vec![0u8; 1 << 16];
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"hutch_dev");
    let load = |log_level: u32, log: &mut Vec<u8>| {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: prog.len() as u32,
            insns: prog.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name,
            ..Default::default()
        };
        if log_level > 0 {
            attr.log_level = log_level;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    let fd = match load(0, &mut log) {
        Ok(fd) => fd,
        Err(e) => {
            // Load again with the verifier log, for the error message.
            let _ = load(1, &mut log);
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            bail!(
                "BPF_PROG_LOAD: {e}{}{}",
                if text.is_empty() { "" } else { "\n" },
                text.trim()
            );
        }
    };
    // SAFETY: a new fd returned by bpf(2).
    let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let cg = std::fs::File::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    let mut attr = ProgAttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .with_context(|| format!("BPF_PROG_ATTACH to {}", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny_all() -> LinuxDeviceCgroup {
        serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap()
    }

    fn dev(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn podman_deny_all_gets_runc_defaults() {
        let st = emulate(&rules_from_spec(&[deny_all()]).unwrap());
        assert!(!st.default_allow);
        let lines: Vec<String> = st.exceptions.iter().map(Rule::v1_line).collect();
        assert_eq!(
            lines,
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm"
            ]
        );
    }

    #[test]
    fn deny_after_allow_removes_access() {
        let rules = rules_from_spec(&[
            deny_all(),
            dev(r#"{"allow":true,"type":"c","major":10,"minor":229,"access":"rwm"}"#),
            dev(r#"{"allow":false,"type":"c","major":10,"minor":229,"access":"w"}"#),
        ])
        .unwrap();
        let st = emulate(&rules);
        let e = st
            .exceptions
            .iter()
            .find(|e| e.major == Some(10) && e.minor == Some(229))
            .unwrap();
        assert_eq!(access_str(e.access), "rm");
    }

    #[test]
    fn allow_all_then_deny_is_a_blacklist() {
        let rules = rules_from_spec(&[
            dev(r#"{"allow":true,"access":"rwm"}"#),
            dev(r#"{"allow":false,"type":"c","major":1,"minor":3,"access":"rwm"}"#),
        ])
        .unwrap();
        let st = emulate(&rules);
        assert!(st.default_allow);
        // The default rules re-allow 1:3 (they come last, as in runc).
        assert!(st.exceptions.is_empty(), "{:?}", st.exceptions);
        let prog = program(&st);
        assert_eq!(run_program(&prog, DEVCG_DEV_BLOCK, ACC_READ, 8, 0), Some(1));
    }

    #[test]
    fn bad_rules_name_the_field() {
        let e = rules_from_spec(&[dev(r#"{"allow":true,"type":"c","access":"rwx"}"#)]).unwrap_err();
        assert!(
            e.to_string().contains("linux.resources.devices[0].access"),
            "{e}"
        );
        let e = rules_from_spec(&[dev(r#"{"allow":true,"type":"p"}"#)]).unwrap_err();
        assert!(e.to_string().contains("devices[0].type"), "{e}");
    }

    #[test]
    fn program_matches_emulation() {
        let rules = rules_from_spec(&[
            deny_all(),
            dev(r#"{"allow":true,"type":"b","major":8,"minor":0,"access":"r"}"#),
        ])
        .unwrap();
        let st = emulate(&rules);
        let prog = program(&st);
        let run = |t, a, maj, min| run_program(&prog, t, a, maj, min).expect("program runs");
        let c = DEVCG_DEV_CHAR;
        let b = DEVCG_DEV_BLOCK;
        assert_eq!(run(c, ACC_READ | ACC_WRITE, 1, 3), 1, "/dev/null rw");
        assert_eq!(run(c, ACC_READ, 136, 7), 1, "pts");
        assert_eq!(run(c, ACC_READ, 1, 1), 0, "/dev/mem");
        assert_eq!(run(c, ACC_MKNOD, 1, 1), 1, "mknod of any char device");
        assert_eq!(run(b, ACC_READ, 8, 0), 1, "sda read");
        assert_eq!(run(b, ACC_WRITE, 8, 0), 0, "sda write");
        assert_eq!(run(b, ACC_READ | ACC_WRITE, 8, 0), 0, "sda rw");
        assert_eq!(run(b, ACC_READ, 8, 1), 0, "sda1");
        assert_eq!(run(c, ACC_READ, 10, 200), 1, "tun");
        // Cross-check every combination against the emulated state.
        for t in [c, b] {
            for a in 1..=7u8 {
                for (maj, min) in [(1, 3), (1, 1), (5, 1), (8, 0), (136, 0), (10, 229)] {
                    let ty = if t == c {
                        DevType::Char
                    } else {
                        DevType::Block
                    };
                    let allowed = st.exceptions.iter().any(|e| {
                        e.allow
                            && (e.typ == DevType::All || e.typ == ty)
                            && e.major.is_none_or(|m| m == maj as i64)
                            && e.minor.is_none_or(|m| m == min as i64)
                            && a & !e.access == 0
                    });
                    assert_eq!(run(t, a, maj, min), allowed as u32, "{t} {a} {maj}:{min}");
                }
            }
        }
    }

    #[test]
    fn program_encoding() {
        let st = Emulated {
            default_allow: false,
            exceptions: vec![],
        };
        let p = program(&st);
        assert_eq!(p.len(), 8);
        assert_eq!(
            p[0],
            Insn {
                code: 0x61,
                regs: 0x12,
                off: 0,
                imm: 0
            }
        );
        assert_eq!(
            p[4],
            Insn {
                code: 0x61,
                regs: 0x14,
                off: 4,
                imm: 0
            }
        );
        assert_eq!(p[7].code, 0x95);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
