//! The v2 device filter: the emulated rules ([`super::emulator`]) compiled into a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, one block per exception and then the default.

use super::emulator::{DevType, Emulated, ACC_ALL};
use crate::syscall::bpf::Insn;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::devices::emulator::{
        emulate, rules_from_spec, ACC_MKNOD, ACC_READ, ACC_WRITE,
    };
    use oci_spec::runtime::LinuxDeviceCgroup;

    fn deny_all() -> LinuxDeviceCgroup {
        serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap()
    }

    fn dev(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
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
