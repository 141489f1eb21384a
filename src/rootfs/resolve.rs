//! Resolving container paths inside the rootfs without ever leaving it.
//!
//! Every lookup starts from the rootfs dir fd. The kernel does the work with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`; where openat2 is unavailable (old kernel,
//! seccomp in a nested runtime) a userspace walk does the same one component at a time with
//! `O_NOFOLLOW`, expanding symlinks itself and clamping `..` at the root. Missing directories are
//! created relative to fds that are already resolved, so a concurrent symlink swap can at worst
//! make a step fail; it can never redirect a mount or a write outside the rootfs.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, FileStat, Mode, SFlag};

/// Linux's own limit on symlinks followed during one lookup.
const MAX_SYMLINKS: usize = 40;

/// Lexically cleans a container path into its components below `/`: `.` is dropped and `..`
/// pops, never above the root. Symlinks are not looked at here.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Splits a cleaned path into its parent and last name; `None` for the root itself.
pub fn split_parent(path: &Path) -> Option<(PathBuf, OsString)> {
    let cleaned = clean(path);
    let name = cleaned.file_name()?.to_os_string();
    let parent = cleaned.parent().map(Path::to_path_buf).unwrap_or_default();
    Some((parent, name))
}

fn relative_arg(path: &Path) -> PathBuf {
    let cleaned = clean(path);
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

fn is_type(st: &FileStat, kind: SFlag) -> bool {
    (st.st_mode & SFlag::S_IFMT.bits()) == kind.bits()
}

pub fn is_dir(st: &FileStat) -> bool {
    is_type(st, SFlag::S_IFDIR)
}

/// Opens `path` inside `root`, following symlinks as if `root` were `/`.
pub fn open_in_root(root: BorrowedFd, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative_arg(path);
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    // EAGAIN means a concurrent rename raced the `..` check; the kernel asks us to retry.
    for _ in 0..16 {
        match openat2(root, &rel, how) {
            Err(Errno::EAGAIN) => continue,
            Err(Errno::ENOSYS) | Err(Errno::EPERM) | Err(Errno::E2BIG) => break,
            other => return other,
        }
    }
    walk(root, &rel, flags, None)
}

/// Userspace equivalent of `open_in_root`, also used to create missing directories
/// (`mkdir` = Some(mode)).
fn walk(root: BorrowedFd, path: &Path, flags: OFlag, mkdir: Option<Mode>) -> nix::Result<OwnedFd> {
    let mut queue: VecDeque<OsString> = walk_components(path).collect();
    // Directories walked through, so `..` returns to where we physically came from and can
    // never rise above `root`.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0;
    let mut created = 0;
    let mut last: Option<(OwnedFd, OsString)> = None;

    while let Some(name) = queue.pop_front() {
        if name == ".." {
            stack.pop();
            last = None;
            continue;
        }
        if name == "." {
            continue;
        }
        let dir = stack.last().map_or(root, |f| f.as_fd());
        let Some(fd) = open_step(dir, &name, mkdir, &mut created)? else {
            // Look again: whatever is there now goes through the same checks.
            queue.push_front(name);
            continue;
        };
        let st = fstat(&fd)?;
        if is_type(&st, SFlag::S_IFLNK) {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            expand_symlink(&fd, &mut queue, &mut stack)?;
            last = None;
            continue;
        }
        if queue.is_empty() {
            last = Some((fd, name));
            break;
        }
        if !is_dir(&st) {
            return Err(Errno::ENOTDIR);
        }
        stack.push(fd);
    }

    let parent = stack.last().map_or(root, |f| f.as_fd());
    match last {
        Some((fd, name)) => reopen_checked(parent, &name, fd, flags),
        None => {
            // The path ended on a directory reached by `..`, `.` or a symlink.
            let here = openat(parent, ".", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())?;
            reopen_checked(parent, OsStr::new("."), here, flags)
        }
    }
}

/// The names a walk steps through: normal components and `..` (`/` and `.` drop out).
fn walk_components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// One component, opened O_PATH without following it. `Ok(None)`: it was missing and has just
/// been made (`mkdir` = Some(mode)); the caller looks again.
fn open_step(
    dir: BorrowedFd,
    name: &OsStr,
    mkdir: Option<Mode>,
    created: &mut u32,
) -> nix::Result<Option<OwnedFd>> {
    match openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) if mkdir.is_some() => {
            // Bounded: something deleting our directories as fast as we make them wins.
            *created += 1;
            if *created > 256 {
                return Err(Errno::ELOOP);
            }
            let mode = mkdir.unwrap_or(Mode::from_bits_truncate(0o755));
            match mkdirat(dir, name, mode) {
                Ok(()) | Err(Errno::EEXIST) => Ok(None),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Puts the target of the symlink `link` in front of the remaining names; an absolute target
/// starts again at the root.
fn expand_symlink(
    link: &OwnedFd,
    queue: &mut VecDeque<OsString>,
    stack: &mut Vec<OwnedFd>,
) -> nix::Result<()> {
    let target = readlinkat(link, "")?;
    let target = Path::new(&target);
    if target.has_root() {
        stack.clear();
    }
    let expanded: Vec<OsString> = walk_components(target).collect();
    for c in expanded.into_iter().rev() {
        queue.push_front(c);
    }
    Ok(())
}

/// Turns the O_PATH handle found by the walk into an fd with the caller's flags, making sure
/// the name still refers to the same inode.
fn reopen_checked(
    parent: BorrowedFd,
    name: &OsStr,
    found: OwnedFd,
    flags: OFlag,
) -> nix::Result<OwnedFd> {
    let st = fstat(&found)?;
    if flags.contains(OFlag::O_DIRECTORY) && !is_dir(&st) {
        return Err(Errno::ENOTDIR);
    }
    if flags.contains(OFlag::O_PATH) {
        return Ok(found);
    }
    let fd = openat(
        parent,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let now = fstat(&fd)?;
    if now.st_dev != st.st_dev || now.st_ino != st.st_ino {
        return Err(Errno::EXDEV);
    }
    Ok(fd)
}

/// `mkdir -p` inside `root`; returns an O_PATH fd of the final directory.
pub fn mkdir_all(root: BorrowedFd, path: &Path, mode: Mode) -> nix::Result<OwnedFd> {
    let dirflags = OFlag::O_PATH | OFlag::O_DIRECTORY;
    match open_in_root(root, path, dirflags) {
        Err(Errno::ENOENT) => walk(root, &relative_arg(path), dirflags, Some(mode)),
        other => other,
    }
}

/// Opens (O_PATH) the file at `path`, creating an empty regular file and its parent
/// directories when missing: the mount point of a file bind mount.
pub fn create_file(root: BorrowedFd, path: &Path, mode: Mode) -> nix::Result<OwnedFd> {
    match open_in_root(root, path, OFlag::O_PATH) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let (parent, name) = split_parent(path).ok_or(Errno::EEXIST)?;
    let dir = mkdir_all(root, &parent, Mode::from_bits_truncate(0o755))?;
    match openat(
        &dir,
        name.as_os_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        mode,
    ) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    // Resolve again from the root so a dangling symlink created meanwhile is still confined.
    open_in_root(root, path, OFlag::O_PATH)
}

/// A path for messages: always shown absolute, as in the config.
pub fn display(path: &Path) -> String {
    let cleaned = clean(path);
    let mut s = String::from("/");
    s.push_str(&String::from_utf8_lossy(cleaned.as_os_str().as_bytes()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static N: AtomicUsize = AtomicUsize::new(0);

    fn tempdir() -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "hutch-resolve-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn open_root(p: &Path) -> OwnedFd {
        nix::fcntl::open(
            p,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    fn ino(fd: &OwnedFd) -> u64 {
        fstat(fd).unwrap().st_ino
    }

    /// root/inside/, outside/secret, plus escaping symlinks in root.
    fn fixture() -> (PathBuf, PathBuf) {
        let base = tempdir();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("inside/deep")).unwrap();
        std::fs::create_dir_all(base.join("outside")).unwrap();
        std::fs::write(base.join("outside/secret"), b"x").unwrap();
        symlink("/", root.join("abs")).unwrap();
        symlink("../../../..", root.join("up")).unwrap();
        symlink(base.join("outside"), root.join("hostabs")).unwrap();
        symlink("inside/deep", root.join("rel")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        (base, root)
    }

    fn both(
        root: BorrowedFd,
        p: &str,
        flags: OFlag,
    ) -> (nix::Result<OwnedFd>, nix::Result<OwnedFd>) {
        (
            open_in_root(root, Path::new(p), flags),
            walk(root, &relative_arg(Path::new(p)), flags, None),
        )
    }

    #[test]
    fn clean_clamps_at_root() {
        assert_eq!(
            clean(Path::new("/../../etc/./x/../y")),
            PathBuf::from("etc/y")
        );
        assert_eq!(clean(Path::new("/")), PathBuf::new());
        assert_eq!(
            split_parent(Path::new("/dev/null")),
            Some((PathBuf::from("dev"), OsString::from("null")))
        );
        assert_eq!(split_parent(Path::new("/..")), None);
    }

    #[test]
    fn resolver_stays_in_root() {
        let (base, root) = fixture();
        let rootfd = open_root(&root);
        let r = rootfd.as_fd();
        let root_ino = ino(&rootfd);
        for p in ["abs", "up", "/../..", "abs/..", "rel/../../../.."] {
            let (a, b) = both(r, p, OFlag::O_PATH | OFlag::O_DIRECTORY);
            assert_eq!(ino(&a.unwrap()), root_ino, "openat2 {p}");
            assert_eq!(ino(&b.unwrap()), root_ino, "walk {p}");
        }
        // An absolute symlink to a host directory is re-rooted and so does not exist inside.
        let (a, b) = both(r, "hostabs/secret", OFlag::O_PATH);
        assert_eq!(a.unwrap_err(), Errno::ENOENT);
        assert_eq!(b.unwrap_err(), Errno::ENOENT);
        let deep = ino(&open_root(&root.join("inside/deep")));
        let (a, b) = both(r, "/rel", OFlag::O_PATH | OFlag::O_DIRECTORY);
        assert_eq!(ino(&a.unwrap()), deep);
        assert_eq!(ino(&b.unwrap()), deep);
        let (a, b) = both(r, "loop1", OFlag::O_PATH);
        assert_eq!(a.unwrap_err(), Errno::ELOOP);
        assert_eq!(b.unwrap_err(), Errno::ELOOP);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn walk_reopens_with_flags() {
        let (base, root) = fixture();
        std::fs::write(root.join("inside/file"), b"hello").unwrap();
        symlink("/inside/file", root.join("flink")).unwrap();
        let rootfd = open_root(&root);
        let fd = walk(
            rootfd.as_fd(),
            Path::new("abs/flink"),
            OFlag::O_RDONLY,
            None,
        )
        .unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).unwrap();
        assert_eq!(s, "hello");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn mkdir_all_creates_inside_root() {
        let (base, root) = fixture();
        let rootfd = open_root(&root);
        let r = rootfd.as_fd();
        let m = Mode::from_bits_truncate(0o755);
        mkdir_all(r, Path::new("/hostabs/new/dir"), m).unwrap();
        assert!(root.join("hostabs").is_symlink());
        assert!(!base.join("outside/new").exists());
        // The absolute link was re-rooted: the directory was made under root/<base>/outside.
        let rerooted = root.join(base.join("outside/new/dir").strip_prefix("/").unwrap());
        assert!(rerooted.is_dir());
        mkdir_all(r, Path::new("/up/a/b"), m).unwrap();
        assert!(root.join("a/b").is_dir());
        mkdir_all(r, Path::new("/rel/x"), m).unwrap();
        assert!(root.join("inside/deep/x").is_dir());
        std::fs::write(root.join("inside/plain"), b"").unwrap();
        assert_eq!(
            mkdir_all(r, Path::new("/inside/plain/sub"), m).unwrap_err(),
            Errno::ENOTDIR
        );
        create_file(
            r,
            Path::new("/abs/etc/hosts"),
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        assert!(root.join("etc/hosts").is_file());
        std::fs::remove_dir_all(base).unwrap();
    }
}
