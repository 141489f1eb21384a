//! Host safety of the container's processes (issue 9): what a hostile or merely misconfigured
//! container must not be able to do to the host or to the caller.

use std::fs;

use serde_json::json;

use crate::common::*;

/// Puts the host's domainname back if a runtime changed it, so a failing run does not leave
/// the machine renamed.
struct RestoreDomainname(String);

impl Drop for RestoreDomainname {
    fn drop(&mut self) {
        let now = fs::read_to_string("/proc/sys/kernel/domainname").unwrap_or_default();
        if now != self.0 {
            let _ = fs::write("/proc/sys/kernel/domainname", self.0.trim_end());
        }
    }
}

#[test]
fn domainname_without_uts_namespace_is_refused() {
    let before = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let _restore = RestoreDomainname(before.clone());
    let mut c = Ctr::new("uts-domain-none");
    c.drop_ns("uts");
    c.config.as_object_mut().unwrap().remove("hostname");
    c.config["domainname"] = json!(format!("hutch-test-{}", std::process::id()));
    let out = c.create();
    let after = fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    assert_eq!(after, before, "the host's domainname was changed:\n{out}");
    // runc 1.1.5 ignores the field (1.2 refuses it like this).
    hutch_only!("runc 1.1.5 ignores domainname");
    out.assert_fail_with("domainname");
    c.rt(&["state", &c.id]).assert_fail_with("does not exist");
}
