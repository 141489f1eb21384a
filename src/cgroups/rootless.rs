//! Cgroups for a rootless container: the caller owns only what the host delegated to it (a
//! cgroup v2 subtree chowned to the user, or v1 directories made for it), often nothing.
//!
//! runc's rules, with one deliberate difference: a hierarchy the caller may not create its
//! directory in, or move the init into, is left out of the container (permission errors only;
//! any other error still fails). A resource whose controller is then missing is skipped with
//! one warning naming the field, where runc fails `create` ("cannot set … limit: container could
//! not join or create cgroup"): rootless podman and `spec --rootless` users on a host without
//! delegation get a container, and the warning says which limit is not enforced. Device rules
//! are never enforced rootless (the user namespace already keeps the container from making or
//! opening device nodes beyond what the user can), as in runc.

use std::borrow::Cow;
use std::io;

use oci_spec::runtime::{LinuxCpu, LinuxResources};

use super::{read_string, Layout, Manager};

/// Permission errors only: the caller does not own this part of the hierarchy.
pub(super) fn is_permission_error(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| {
            matches!(
                e.raw_os_error(),
                Some(libc::EACCES | libc::EPERM | libc::EROFS)
            )
        })
}

impl Manager {
    /// Drops hierarchy `index` from the container (removing what was made for it) after a
    /// permission error, with the reason in the debug log.
    pub(super) fn leave_out(&mut self, index: usize, err: &anyhow::Error) {
        let h = self.hierarchies.remove(index);
        crate::logging::debug(&format!(
            "rootless: container left out of cgroup {}: {err:#}",
            h.path.display()
        ));
        let mut made: Vec<_> = self
            .created
            .iter()
            .filter(|p| {
                p.starts_with(&h.path) || (h.path.starts_with(p) && p.starts_with(&h.mount))
            })
            .cloned()
            .collect();
        made.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in &made {
            let _ = std::fs::remove_dir(p);
        }
        self.created.retain(|p| !made.contains(p));
    }

    /// Whether `controller` can be written for this container: its v1 hierarchy is in, or (v2)
    /// the controller is enabled for the container's directory.
    fn can_control(&self, controller: &str) -> bool {
        match self.layout {
            Layout::V2 => self.unified_has(controller),
            Layout::V1 | Layout::Hybrid => self.v1(controller).is_some(),
        }
    }

    /// `r` without what this rootless container's cgroups cannot take, with a warning for
    /// each field skipped. A non-rootless manager gets `r` itself (no copy on create's path).
    pub(super) fn enforceable<'r>(&self, r: &'r LinuxResources) -> Cow<'r, LinuxResources> {
        if !self.rootless {
            return Cow::Borrowed(r);
        }
        let mut out = r.clone();
        let skip = |field: &str, controller: &str| {
            crate::logging::warn(&format!(
                "rootless: linux.resources.{field} ignored: no {controller} cgroup the user may write"
            ));
        };
        out.set_devices(None);
        if r.memory().is_some() && !self.can_control("memory") {
            skip("memory", "memory");
            out.set_memory(None);
        }
        if let Some(cpu) = r.cpu() {
            out.set_cpu(Some(self.enforceable_cpu(cpu, &skip)));
        }
        if r.pids().is_some() && !self.can_control("pids") {
            skip("pids", "pids");
            out.set_pids(None);
        }
        let io = if self.layout == Layout::V2 {
            "io"
        } else {
            "blkio"
        };
        if r.block_io().is_some() && !self.can_control(io) {
            skip("blockIO", io);
            out.set_block_io(None);
        }
        if r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty())
            && !self.can_control("hugetlb")
        {
            skip("hugepageLimits", "hugetlb");
            out.set_hugepage_limits(None);
        }
        if r.rdma().as_ref().is_some_and(|l| !l.is_empty()) && !self.can_control("rdma") {
            skip("rdma", "rdma");
            out.set_rdma(None);
        }
        if let Some(net) = r.network() {
            let mut net = net.clone();
            if net.class_id().is_some() && !self.can_control("net_cls") {
                skip("network.classID", "net_cls");
                net.set_class_id(None);
            }
            if net.priorities().as_ref().is_some_and(|p| !p.is_empty())
                && !self.can_control("net_prio")
            {
                skip("network.priorities", "net_prio");
                net.set_priorities(None);
            }
            out.set_network(Some(net));
        }
        if let Some(unified) = r.unified() {
            let mut kept = unified.clone();
            kept.retain(|key, _| {
                let controller = key.split('.').next().unwrap_or_default();
                let ok = self.unified().is_some()
                    && (controller == "cgroup" || self.unified_has(controller));
                if !ok {
                    skip(&format!("unified.{key}"), controller);
                }
                ok
            });
            out.set_unified(Some(kept));
        }
        Cow::Owned(out)
    }

    fn unified_has(&self, controller: &str) -> bool {
        self.unified().is_some_and(|h| {
            read_string(&h.path.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|x| x == controller))
        })
    }

    fn enforceable_cpu(&self, cpu: &LinuxCpu, skip: &dyn Fn(&str, &str)) -> LinuxCpu {
        let mut cpu = cpu.clone();
        let bandwidth_set = cpu.shares().is_some()
            || cpu.quota().is_some()
            || cpu.period().is_some()
            || cpu.burst().is_some()
            || cpu.idle().is_some()
            || cpu.realtime_runtime().is_some()
            || cpu.realtime_period().is_some();
        if bandwidth_set && !self.can_control("cpu") {
            skip("cpu (shares, quota, period, burst, idle, realtime)", "cpu");
            cpu.set_shares(None);
            cpu.set_quota(None);
            cpu.set_period(None);
            cpu.set_burst(None);
            cpu.set_idle(None);
            cpu.set_realtime_runtime(None);
            cpu.set_realtime_period(None);
        }
        if (cpu.cpus().is_some() || cpu.mems().is_some()) && !self.can_control("cpuset") {
            skip("cpu.cpus/cpu.mems", "cpuset");
            cpu.set_cpus(None);
            cpu.set_mems(None);
        }
        cpu
    }
}
