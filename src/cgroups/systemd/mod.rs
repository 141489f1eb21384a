//! The systemd cgroup driver (`--systemd-cgroup`): the container runs in a transient unit that
//! systemd makes and owns, as kubelet, Docker and podman expect on systemd hosts.
//!
//! [`unit`] turns `linux.cgroupsPath` (`slice:prefix:name`) into the unit and its cgroup;
//! [`properties`] turns `linux.resources` and annotations into unit properties.

pub mod properties;
pub mod unit;
