//! `linux.netDevices` (runtime-spec config-linux.md, "Network Devices"): existing network
//! devices of the runtime's network namespace are moved into the container's, renamed to
//! `name` when one is given, with their permanent global addresses, and set up.
//!
//! When: after the init is cloned (so the container's network namespace exists, new or joined)
//! and before it may go on, so the prestart / createRuntime hooks and the container process
//! find the devices in place.
//!
//! Undo: a `create` that fails after the move brings every moved device back to the runtime's
//! namespace, under its host name, with its addresses and its up/down state, before the init is
//! killed (a virtual device would otherwise die with a new namespace). The [`Moved`] record
//! holds the container's namespace open so this works even when the init already exited.
//! A container that was created is never undone this way: as the spec requires (and runc
//! does), `delete` does not move devices out; the kernel does when the namespace goes away
//! (physical devices return to the initial namespace, virtual ones are destroyed).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::namespaces::NamespacePlan;
use crate::syscall::netlink::{
    Address, Link, RouteSocket, IFA_F_PERMANENT, IFF_LOOPBACK, IFF_UP, RT_SCOPE_UNIVERSE,
};

/// The devices to move, checked against the config and the runtime's namespace.
#[derive(Debug)]
pub struct Plan {
    /// host name → name in the container, in a stable order.
    devices: BTreeMap<String, String>,
}

/// Validates `linux.netDevices`; None when the config has none. Everything the config and the
/// runtime's namespace can tell is checked here, before anything is made.
pub fn check(spec: &Spec, namespaces: &NamespacePlan) -> Result<Option<Plan>> {
    let Some(devices) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return Ok(None);
    };
    if devices.is_empty() {
        return Ok(None);
    }
    let first = devices.keys().min().map(String::as_str).unwrap_or_default();
    if !namespaces.has(LinuxNamespaceType::Network) {
        bail!(
            "config.json: linux.netDevices[{first:?}]: moving a network device needs a network namespace of the container's own (a new one, or one joined by path, in linux.namespaces); the container would share the runtime's"
        );
    }
    if joins_runtime_netns(namespaces)? {
        bail!(
            "config.json: linux.netDevices[{first:?}]: the network namespace joined in linux.namespaces is the runtime's own; a device cannot be moved into the namespace it is in"
        );
    }
    let mut plan = Plan {
        devices: BTreeMap::new(),
    };
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    for (host, dev) in devices {
        if let Err(why) = valid_name(host) {
            bail!("config.json: linux.netDevices[{host:?}]: {host:?} is not a valid network device name: {why}");
        }
        let target = match dev.name().as_deref() {
            Some(name) if !name.is_empty() => {
                if let Err(why) = valid_name(name) {
                    bail!("config.json: linux.netDevices[{host:?}].name: {name:?} is not a valid network device name: {why}");
                }
                name.to_string()
            }
            _ => host.clone(),
        };
        // A `%d` template is numbered by the kernel, so two of them never collide.
        if !target.contains('%') {
            if let Some(other) = taken.insert(target.clone(), host.clone()) {
                let (a, b) = if other < *host {
                    (other, host.clone())
                } else {
                    (host.clone(), other)
                };
                bail!("config.json: linux.netDevices[{a:?}] and linux.netDevices[{b:?}] would both be named {target:?} in the container");
            }
        }
        plan.devices.insert(host.clone(), target);
    }
    let mut sock = RouteSocket::open().context("linux.netDevices: opening a netlink socket")?;
    for host in plan.devices.keys() {
        let link = sock.link_by_name(host).with_context(|| {
            format!("config.json: linux.netDevices[{host:?}]: looking the device up")
        })?;
        match link {
            None => bail!(
                "config.json: linux.netDevices[{host:?}]: no network device {host:?} in the runtime's network namespace"
            ),
            Some(link) if link.flags & IFF_LOOPBACK != 0 => bail!(
                "config.json: linux.netDevices[{host:?}]: {host:?} is a loopback device, which cannot leave its network namespace"
            ),
            Some(_) => {}
        }
    }
    Ok(Some(plan))
}

/// The kernel's rules for a device name (dev_valid_name): 1 to 15 bytes, not `.` or `..`, no
/// `/`, `:` or white space.
fn valid_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() >= 16 {
        return Err("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are not device names");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0x0b || b == 0)
    {
        return Err("it contains `/`, `:`, a NUL or white space");
    }
    Ok(())
}

/// The network namespace joined by path is the one hutch runs in.
fn joins_runtime_netns(namespaces: &NamespacePlan) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let Some((_, path)) = namespaces
        .joins
        .iter()
        .find(|(t, _)| *t == LinuxNamespaceType::Network)
    else {
        return Ok(false);
    };
    let theirs = std::fs::metadata(path)
        .with_context(|| format!("linux.namespaces: network namespace {}", path.display()))?;
    let ours = std::fs::metadata("/proc/thread-self/ns/net")
        .context("reading the runtime's network namespace")?;
    Ok(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// One device that is now in the container's namespace.
struct MovedDevice {
    host_name: String,
    /// Its index in the container's namespace.
    index: i32,
    addresses: Vec<Address>,
    was_up: bool,
}

/// What [`Plan::move_into`] did, for [`Moved::restore`]. Dropping it undoes nothing.
pub struct Moved {
    runtime_ns: OwnedFd,
    /// Also keeps the container's namespace alive until a restore is done.
    container_ns: OwnedFd,
    host: RouteSocket,
    container: RouteSocket,
    devices: Vec<MovedDevice>,
}

impl Plan {
    /// Moves every device into the network namespace of `init`. On failure, the devices
    /// moved so far are brought back before the error is returned.
    pub fn move_into(&self, init: Pid) -> Result<Moved> {
        let ns_path = Path::new("/proc").join(init.to_string()).join("ns/net");
        let container_ns: OwnedFd = File::open(&ns_path)
            .with_context(|| format!("linux.netDevices: opening {}", ns_path.display()))?
            .into();
        let runtime_ns: OwnedFd = File::open("/proc/thread-self/ns/net")
            .context("linux.netDevices: opening the runtime's network namespace")?
            .into();
        let host = RouteSocket::open().context("linux.netDevices: opening a netlink socket")?;
        let container = RouteSocket::open_in(container_ns.as_fd(), runtime_ns.as_fd()).context(
            "linux.netDevices: opening a netlink socket in the container's network namespace",
        )?;
        let mut moved = Moved {
            runtime_ns,
            container_ns,
            host,
            container,
            devices: Vec::new(),
        };
        for (host_name, target) in &self.devices {
            if let Err(err) = moved.move_one(host_name, target) {
                moved.restore();
                return Err(err);
            }
        }
        Ok(moved)
    }
}

impl Moved {
    fn move_one(&mut self, host_name: &str, target: &str) -> Result<()> {
        let field = format!("linux.netDevices[{host_name:?}]");
        let (link, addresses) = self.host_device(&field, host_name)?;
        let was_up = link.flags & IFF_UP != 0;
        let taken = format!(
            "{field}: a device named {target:?} already exists in the container's network namespace"
        );
        // The kernel moves a device under its own name when that is free on the other side and
        // renames it there afterwards: a taken target name fails only after the move, leaving
        // the device inside under its host name. So the name is checked first, and a failed
        // move is looked for inside (below).
        if !target.contains('%') && self.lookup_inside(&field, target)?.is_some() {
            bail!("{taken}");
        }
        let host_name_free_inside = self.lookup_inside(&field, host_name)?.is_none();
        // Down before it leaves, so nothing on the host keeps sending through it mid-move.
        if was_up {
            self.host
                .set_up(link.index, false)
                .with_context(|| format!("{field}: setting {host_name:?} down"))?;
        }
        if let Err(err) = self
            .host
            .move_to_netns(link.index, target, self.container_ns.as_fd())
        {
            let device = MovedDevice {
                host_name: host_name.to_string(),
                index: link.index,
                addresses,
                was_up,
            };
            self.after_failed_move(device, host_name_free_inside);
            let why = match err.raw_os_error() {
                Some(libc::EEXIST) => return Err(anyhow::anyhow!("{taken}")),
                Some(libc::EINVAL) => format!(
                    "the kernel refused ({err}); devices such as bridges are bound to their network namespace"
                ),
                _ => err.to_string(),
            };
            bail!("{field}: moving {host_name:?} into the container's network namespace as {target:?}: {why}");
        }
        self.set_up_inside(&field, host_name, target, link.index, addresses, was_up)
    }

    /// The host device and the addresses that go with it: only what someone configured and
    /// that means the same anywhere survives the move (the kernel drops every address of a
    /// device that changes namespace).
    fn host_device(&mut self, field: &str, host_name: &str) -> Result<(Link, Vec<Address>)> {
        let link = self
            .host
            .link_by_name(host_name)
            .with_context(|| format!("{field}: looking the device up"))?
            .with_context(|| {
                format!(
                    "{field}: no network device {host_name:?} in the runtime's network namespace"
                )
            })?;
        let addresses: Vec<Address> = self
            .host
            .addresses(link.index)
            .with_context(|| format!("{field}: listing the addresses of {host_name:?}"))?
            .into_iter()
            .filter(|a| a.flags & IFA_F_PERMANENT != 0 && a.scope == RT_SCOPE_UNIVERSE)
            .collect();
        Ok((link, addresses))
    }

    /// A failed move may still have moved the device, without renaming it: it is then
    /// recorded (under its index inside), and the caller's restore brings it back with the
    /// rest. Otherwise it is still on the host, and up again if it was. `device.index` is its
    /// host index.
    fn after_failed_move(&mut self, mut device: MovedDevice, host_name_free_inside: bool) {
        let stranded = if host_name_free_inside {
            self.container
                .link_by_name(&device.host_name)
                .ok()
                .flatten()
        } else {
            None
        };
        match stranded {
            Some(inside) => {
                device.index = inside.index;
                self.devices.push(device);
            }
            None if device.was_up => {
                let _ = self.host.set_up(device.index, true);
            }
            None => {}
        }
    }

    /// Finds the moved device inside, records it, and gives it its addresses and its up state.
    fn set_up_inside(
        &mut self,
        field: &str,
        host_name: &str,
        target: &str,
        host_index: i32,
        addresses: Vec<Address>,
        was_up: bool,
    ) -> Result<()> {
        // A `%d` template leaves the name to the kernel, so the device is found by its index,
        // which a move keeps unless another device has it there.
        let found = if target.contains('%') {
            self.container.link_by_index(host_index)
        } else {
            self.container.link_by_name(target)
        };
        let Some(inside) = found.ok().flatten() else {
            // Moved, but not to be found (so it cannot be brought back either): say so.
            bail!("{field}: {host_name:?} was moved into the container's network namespace but cannot be found there as {target:?}");
        };
        self.devices.push(MovedDevice {
            host_name: host_name.to_string(),
            index: inside.index,
            addresses: addresses.clone(),
            was_up,
        });
        for addr in &addresses {
            self.container
                .add_address(inside.index, addr)
                .with_context(|| format!("{field}: adding address {addr} to {:?} in the container's network namespace", inside.name))?;
        }
        self.container.set_up(inside.index, true).with_context(|| {
            format!(
                "{field}: setting {:?} up in the container's network namespace",
                inside.name
            )
        })?;
        crate::logging::debug(&format!(
            "{field}: moved into the container's network namespace as {:?} with {} address(es)",
            inside.name,
            addresses.len()
        ));
        Ok(())
    }

    fn lookup_inside(&mut self, field: &str, name: &str) -> Result<Option<Link>> {
        self.container.link_by_name(name).with_context(|| {
            format!("{field}: looking up {name:?} in the container's network namespace")
        })
    }

    /// Brings every moved device back to the runtime's namespace, under its host name, with
    /// its addresses and up state; best effort (each failure is logged, the rest go on).
    pub fn restore(mut self) {
        while let Some(dev) = self.devices.pop() {
            if let Err(err) = self.restore_one(&dev) {
                crate::logging::warn(&format!(
                    "linux.netDevices[{:?}]: could not bring the device back to the runtime's network namespace: {err:#}",
                    dev.host_name
                ));
            }
        }
    }

    fn restore_one(&mut self, dev: &MovedDevice) -> Result<()> {
        let _ = self.container.set_up(dev.index, false);
        self.container
            .move_to_netns(dev.index, &dev.host_name, self.runtime_ns.as_fd())
            .context("moving it back")?;
        let link = self
            .host
            .link_by_name(&dev.host_name)
            .context("looking it up after the move back")?
            .context("not found after the move back")?;
        for addr in &dev.addresses {
            self.host
                .add_address(link.index, addr)
                .with_context(|| format!("adding address {addr} back"))?;
        }
        if dev.was_up {
            self.host
                .set_up(link.index, true)
                .context("setting it up")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn device_names_follow_the_kernel() {
        for ok in ["eth0", "a", "veth-x_1.2", "123456789012345", "eth%d"] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "1234567890123456",
        ] {
            assert!(valid_name(bad).is_err(), "{bad:?}");
        }
    }
}
