//! `tmpcopyup`: a tmpfs mounted over a directory of the image starts with a copy of what the
//! directory held (podman's `--tmpfs` and `--read-only` rely on it; runc and crun do it).
//!
//! The image's directory is opened before the tmpfs covers it; the copy walks it by fd, one
//! name at a time relative to already-open directories, never following a symlink (links are
//! copied as links), so nothing outside the rootfs is read or written whatever the image holds.
//! Modes, owners and extended attributes are kept where the tmpfs and the user namespace allow;
//! hard links become separate copies, as in runc.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, fstat, fstatat, mkdirat, mknodat, FchmodatFlags};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use crate::syscall::fs as sysfs;

/// Deeper trees than this are refused rather than walked (each level holds two fds).
const MAX_DEPTH: usize = 200;

/// Copies everything under `src` (the image's directory) into `dst` (the fresh tmpfs root),
/// and gives the tmpfs root the directory's mode, owner and extended attributes. Both are
/// directories opened O_RDONLY; `shown` is the container path, for messages.
pub fn copy_up(src: &OwnedFd, dst: &OwnedFd, shown: &Path) -> Result<()> {
    copy_children(src.as_fd(), dst.as_fd(), shown, 0)?;
    let st = fstat(src).with_context(|| format!("tmpcopyup: stat {}", shown.display()))?;
    finish(src.as_fd(), dst.as_fd(), &st)
        .with_context(|| format!("tmpcopyup: attributes of {}", shown.display()))
}

fn copy_children(src: BorrowedFd, dst: BorrowedFd, shown: &Path, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "tmpcopyup: {} is more than {MAX_DEPTH} directories deep",
            shown.display()
        );
    }
    // A directory stream of its own, so the caller's fd offset does not matter.
    let mut dir = nix::dir::Dir::openat(
        src,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("tmpcopyup: open {}", shown.display()))?;
    for entry in dir.iter() {
        let entry = entry.with_context(|| format!("tmpcopyup: read {}", shown.display()))?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        let here = shown.join(OsStr::from_bytes(name.to_bytes()));
        copy_entry(src, dst, name, &here, depth)
            .with_context(|| format!("tmpcopyup: {}", here.display()))?;
    }
    Ok(())
}

fn copy_entry(
    src: BorrowedFd,
    dst: BorrowedFd,
    name: &CStr,
    here: &Path,
    depth: usize,
) -> Result<()> {
    let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW).context("stat")?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    match kind {
        SFlag::S_IFDIR => {
            // Private until its content and final mode are in place.
            mkdirat(dst, name, Mode::S_IRWXU).context("mkdir")?;
            let from = open_same(src, name, OFlag::O_DIRECTORY, &st)?;
            let to = openat(
                dst,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .context("open the copy")?;
            copy_children(from.as_fd(), to.as_fd(), here, depth + 1)?;
            finish(from.as_fd(), to.as_fd(), &st)
        }
        SFlag::S_IFREG => {
            // O_NONBLOCK: should the name have become a fifo since the stat, open must not hang
            // (open_same then refuses it).
            let from = open_same(src, name, OFlag::O_NONBLOCK, &st)?;
            let to = openat(
                dst,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::S_IRUSR | Mode::S_IWUSR,
            )
            .context("create the copy")?;
            let (mut reader, mut writer) = (File::from(from), File::from(to));
            std::io::copy(&mut reader, &mut writer).context("copy the content")?;
            finish(reader.as_fd(), writer.as_fd(), &st)
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(src, name).context("readlink")?;
            symlinkat(target.as_os_str(), dst, name).context("symlink")?;
            chown_entry(dst, name, &st)
        }
        // Device nodes, fifos and sockets: the node itself, never what it leads to.
        _ => {
            mknodat(dst, name, kind, Mode::S_IRUSR | Mode::S_IWUSR, st.st_rdev).context("mknod")?;
            chown_entry(dst, name, &st)?;
            // Just made by us on our own tmpfs: it is not a symlink.
            fchmodat(dst, name, file_mode(&st), FchmodatFlags::FollowSymlink).context("chmod")
        }
    }
}

/// Opens `name` for reading without following a symlink, and checks it is still the inode
/// that was stat'ed.
fn open_same(dir: BorrowedFd, name: &CStr, extra: OFlag, st: &FileStat) -> Result<OwnedFd> {
    let fd = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | extra,
        Mode::empty(),
    )
    .context("open")?;
    let now = fstat(&fd).context("stat")?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        bail!("changed while it was being copied");
    }
    Ok(fd)
}

/// Extended attributes, then owner, then mode (chown clears set-id bits, and a directory must
/// stay writable until it is filled).
fn finish(src: BorrowedFd, dst: BorrowedFd, st: &FileStat) -> Result<()> {
    copy_xattrs(src, dst)?;
    chown_ignoring_unmapped(fchown(
        dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    ))?;
    fchmod(dst, file_mode(st)).context("chmod")
}

fn file_mode(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

/// The copy's owner is the original's, without following `name` should it be a symlink.
fn chown_entry(dir: BorrowedFd, name: &CStr, st: &FileStat) -> Result<()> {
    chown_ignoring_unmapped(fchownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ))
}

/// In a user namespace, files of ids it does not map show as the overflow id, which cannot be
/// given to a new file (EINVAL): the copy then stays the container root's, as runc's would.
fn chown_ignoring_unmapped(result: nix::Result<()>) -> Result<()> {
    match result {
        Ok(()) | Err(Errno::EINVAL) => Ok(()),
        Err(e) => Err(e).context("chown"),
    }
}

/// Copies what the tmpfs and the process's privileges allow: a `security.*` label the LSM
/// refuses or a `trusted.*` attribute without CAP_SYS_ADMIN is left behind, not fatal.
fn copy_xattrs(src: BorrowedFd, dst: BorrowedFd) -> Result<()> {
    let names = match sysfs::list_xattrs(src) {
        Ok(names) => names,
        Err(e) if skippable(&e) => return Ok(()),
        Err(e) => return Err(e).context("list extended attributes"),
    };
    for name in names {
        let value = match sysfs::get_xattr(src, &name) {
            Ok(v) => v,
            Err(e) if skippable(&e) || e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) => return Err(e).with_context(|| format!("read xattr {name:?}")),
        };
        match sysfs::set_xattr(dst, &name, &value) {
            Ok(()) => {}
            Err(e) if skippable(&e) => {}
            Err(e) => return Err(e).with_context(|| format!("set xattr {name:?}")),
        }
    }
    Ok(())
}

fn skippable(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTSUP | libc::EPERM | libc::EACCES | libc::EINVAL)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
    use std::path::PathBuf;

    fn tempdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("hutch-copyup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn open_dir(p: &Path) -> OwnedFd {
        nix::fcntl::open(
            p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let base = tempdir("tree");
        let (src, dst) = (base.join("src"), base.join("dst"));
        std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("file"), "content\n").unwrap();
        std::fs::write(src.join("sub/deeper/x"), "deep\n").unwrap();
        std::fs::set_permissions(src.join("file"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o1750)).unwrap();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o711)).unwrap();
        symlink("/etc/passwd", src.join("abs-link")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::fs::set_permissions(src.join("fifo"), std::fs::Permissions::from_mode(0o620)).unwrap();
        copy_up(&open_dir(&src), &open_dir(&dst), Path::new("/x")).unwrap();

        assert_eq!(
            std::fs::read_to_string(dst.join("file")).unwrap(),
            "content\n"
        );
        assert_eq!(
            std::fs::read_to_string(dst.join("sub/deeper/x")).unwrap(),
            "deep\n"
        );
        let mode = |p: &str| std::fs::symlink_metadata(dst.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("file"), 0o640);
        assert_eq!(mode("sub"), 0o1750);
        assert_eq!(mode("fifo"), 0o620);
        assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o711);
        assert_eq!(
            std::fs::read_link(dst.join("abs-link")).unwrap(),
            PathBuf::from("/etc/passwd")
        );
        assert!(std::fs::symlink_metadata(dst.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        std::fs::remove_dir_all(base).unwrap();
    }
}
