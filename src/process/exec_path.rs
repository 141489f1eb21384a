//! Finding the container's executable the way runc does before it reports `create` done, with
//! runc's wording: engines map "executable file not found" / "no such file or directory" to
//! exit status 127 and "permission denied" to 126.

use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Result};

pub fn find_executable(arg0: &str, env: &[String]) -> Result<CString> {
    if arg0.contains('/') {
        check_executable(Path::new(arg0), arg0)?;
        return to_cstring(arg0);
    }
    let path_var = env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or_default();
    // An empty element means "." to a shell, and a relative one is relative to the cwd: both
    // would run whatever the working directory holds. Go's exec.LookPath (runc) refuses a
    // result found that way, so only absolute directories are searched.
    for dir in path_var.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{dir}/{arg0}");
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return to_cstring(&candidate);
            }
        }
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

fn check_executable(path: &Path, arg0: &str) -> Result<()> {
    match std::fs::metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!("exec: {arg0:?}: stat {arg0}: no such file or directory")
        }
        Err(err) => bail!("exec: {arg0:?}: stat {arg0}: {err}"),
        Ok(meta) if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 => {
            bail!("exec: {arg0:?}: permission denied")
        }
        Ok(_) => Ok(()),
    }
}

fn to_cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow::anyhow!("process.args[0]: contains a NUL byte"))
}
