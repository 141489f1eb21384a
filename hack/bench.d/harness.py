#!/usr/bin/env python3
"""hack/bench.d/harness.py: the timing harness behind hack/bench.

Runs every runtime side by side, interleaved: each round runs each measure once per runtime, the
runtime order rotated by one each round, so machine noise hits them all alike. Every container gets
a unique id (runtime-pid-counter), every runtime its own --root. The harness is a child subreaper
(PR_SET_CHILD_SUBREAPER), as a shim is: the inits that `create` and `run -d` leave behind are
re-parented to it and reaped here. Commands are started with posix_spawn (vfork-like) and timed from
just before the spawn to the wait4() that reaps them; wait4's rusage gives each command's peak RSS
and CPU time.

The rootless row (--rootless-user) runs its commands as that user through one helper, this same
file run as `--serve` under setpriv, which spawns, reaps and times them the same way.

Run it through hack/bench, which installs the packages, builds hutch and the floor, makes the
rootfs and enters the private mount namespace (see ../shared/README.md) first.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import pwd
import select
import shutil
import statistics
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
MS = 1e6  # ns per ms


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes: spawn, reap (as a subreaper), time.


class Procs:
    def __init__(self, work):
        self.reaped = {}  # pid -> (status, rusage) of every child reaped, ours or an orphan's
        self.me = os.getpid()
        self.out = os.path.join(work, "out")
        self.devnull = os.open("/dev/null", os.O_RDWR)

    def spawn(self, argv, out=None):
        """Starts argv with stdin /dev/null and stdout+stderr to `out` (a file) or /dev/null."""
        fa = [(os.POSIX_SPAWN_DUP2, self.devnull, 0)]
        if out:
            fa.append((os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            fa.append((os.POSIX_SPAWN_DUP2, 1, 2))
        else:
            fa += [(os.POSIX_SPAWN_DUP2, self.devnull, 1), (os.POSIX_SPAWN_DUP2, self.devnull, 2)]
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
        self.reaped.pop(pid, None)  # a stale entry of a reused pid
        return pid

    def reap_one(self, block=True):
        try:
            pid, status, ru = os.wait4(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == 0:
            return None
        self.reaped[pid] = (status, ru)
        return pid

    def drain(self):
        while self.reap_one(block=False):
            pass

    def bounded(self, keys, start, par):
        """Runs one command per key, at most `par` at a time; yields (key, ok, output) as each
        ends. `start(key)` gives (argv, out): it is called only when the command starts (so a
        bundle is made then), `out` a file for stdout+stderr or None for /dev/null; `output` is
        that file's text when the command failed. `keys` is consumed in place: a caller that
        clears it starts nothing more."""
        running = {}
        while keys or running:
            while keys and len(running) < par:
                key = keys.pop(0)
                argv, out = start(key)
                running[self.spawn(argv, out)] = (key, out)
            pid = next((p for p in running if p in self.reaped), None)
            if pid is None:
                pid = self.reap_one()
                if pid is None:
                    return
                if pid not in running:
                    continue
            status, _ = self.reaped.pop(pid)
            key, out = running.pop(pid)
            ok = os.waitstatus_to_exitcode(status) == 0
            output = ""
            if out:
                if not ok:
                    with open(out, errors="replace") as f:
                        output = f.read().strip()
                os.unlink(out)
            yield key, ok, output

    def wait(self, pid):
        while pid not in self.reaped:
            if self.reap_one() is None:
                raise RuntimeError(f"pid {pid} is not a child")
        return self.reaped.pop(pid)

    def run(self, argv):
        """Runs argv; returns (ok, ns, rusage, output)."""
        t0 = time.perf_counter_ns()
        pid = self.spawn(argv, self.out)
        status, ru = self.wait(pid)
        ns = time.perf_counter_ns() - t0
        ok = os.waitstatus_to_exitcode(status) == 0
        output = ""
        if not ok:
            with open(self.out, errors="replace") as f:
                output = f.read().strip()
        return ok, ns, ru, output

    def output(self, argv):
        pid = self.spawn(argv, self.out)
        status, _ = self.wait(pid)
        with open(self.out, errors="replace") as f:
            return os.waitstatus_to_exitcode(status), f.read()

    def wait_exit(self, pid, timeout=10.0):
        """Waits until pid (an init the runtime left, re-parented to us or not) has exited and,
        if it was our child, is reaped. Returns False on timeout."""
        if pid in self.reaped:
            del self.reaped[pid]
            return True
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self.reaped.pop(pid, None)
            return True
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(timeout * 1000):
                return False
        finally:
            os.close(fd)
        if ppid_of(pid) == self.me:
            self.wait(pid)
        else:
            self.reaped.pop(pid, None)
        return True


def ppid_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def descendants(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            pp = ppid_of(int(d))
            if pp is not None:
                kids.setdefault(pp, []).append(int(d))
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def mem_of(pid):
    """(RSS, PSS) in KiB from smaps_rollup; zombies and kernel threads count 0."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def shmem_kib():
    """System-wide Shmem (KiB): memfd copies of a runtime binary held by its inits show here,
    not in their RSS. Noisy on a busy machine: take it as an estimate."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1])
    return 0


def comm_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().decode(errors="replace").split("\0")
        verb = next((x for x in argv[1:] if x.isalpha()), "")
        return f"{os.path.basename(argv[0])} {verb}".strip()
    except OSError:
        return "?"


def per_container(procs, k, shm):
    """What `procs`, left by k containers, cost each: (processes, RSS, PSS, their names, shm)."""
    mem = [mem_of(p) for p in procs]
    return (len(procs) / k, sum(m[0] for m in mem) / k, sum(m[1] for m in mem) / k,
            sorted({comm_of(p) for p in procs}), shm)


def rotated(items, r):
    """`items` rotated left by r: round r of an interleaved run starts with a different one."""
    if not items:
        return []
    k = r % len(items)
    return items[k:] + items[:k]


def unlink_quiet(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def cgroup_controller_dirs():
    """Every hierarchy's root (v1 controllers, and the v2 tree wherever it is mounted)."""
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.isdir(base):
            yield from [base] + [os.path.join(base, c) for c in os.listdir(base)]


def rmdir_quiet(path):
    try:
        os.rmdir(path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Rootless: commands run as an unprivileged user.


def serve(work):
    """The rootless helper (`harness.py --serve DIR`, started by AsUser as the bench user): reads
    one JSON argv a line on stdin, runs it as Procs.run does, answers one JSON line. A long-lived
    helper rather than a `setpriv` per command, so a rootless sample carries no extra exec and
    is timed exactly as the root measures are."""
    libc = ctypes.CDLL(None, use_errno=True)
    # Orphans of a rootless runtime come back here, not to the root harness, while it runs.
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    p = Procs(work)
    capeff = "?"
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                capeff = line.split()[1]

    def answer(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    answer({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
            "groups": os.getgroups(), "capeff": capeff})
    for line in sys.stdin:
        argv = json.loads(line)
        try:
            t0 = time.perf_counter_ns()
            pid = p.spawn(argv, p.out)
            status, ru = p.wait(pid)
            ns = time.perf_counter_ns() - t0
        except OSError as e:
            answer({"code": 127, "ns": 0, "cpu_ms": 0.0, "out": f"{argv[0]}: {e}"})
            continue
        p.drain()
        with open(p.out, errors="replace") as f:
            out = f.read()
        answer({"code": os.waitstatus_to_exitcode(status), "ns": ns,
                "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000, "out": out[-4000:]})
    return 0


class AsUser:
    """Runs commands as `user` (no supplementary groups, no capabilities) through one serve()
    helper started with setpriv. The harness's mount namespace is inherited, so crun sees the
    same bound cgroup.controllers as for the root measures. `xdg` is the user's 0700
    XDG_RUNTIME_DIR-style directory; each runtime's --root goes under it."""

    def __init__(self, user, setpriv, work):
        pw = pwd.getpwnam(user)
        self.user, self.uid, self.gid = user, pw.pw_uid, pw.pw_gid
        # The user reaches the shared rootfs and bundles through the work dir (mktemp's 0700).
        os.chmod(work, 0o711)
        self.xdg = os.path.join(work, "rootless")
        os.mkdir(self.xdg, 0o700)
        os.chown(self.xdg, self.uid, self.gid)
        # A copy the user can read wherever the repository is.
        helper = os.path.join(work, "rootless-helper.py")
        shutil.copyfile(os.path.abspath(__file__), helper)
        os.chmod(helper, 0o644)
        env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
               f"HOME={pw.pw_dir}", f"USER={user}", f"LOGNAME={user}", f"XDG_RUNTIME_DIR={self.xdg}"]
        # The system python: the harness's own may live where the user cannot reach (pyenv
        # under /root).
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        argv = [setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"] + env + [
            python, helper, "--serve", self.xdg]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self.proc.stdout.readline()
        try:
            who = json.loads(hello)
        except ValueError:
            self.close()
            raise RuntimeError(f"rootless helper ({' '.join(argv[:5])}) did not start: {hello!r}")
        # A helper that kept any privilege would make every rootless number meaningless.
        if (who["uid"], who["euid"], who["gid"], who["egid"]) != (self.uid,) * 2 + (self.gid,) * 2 \
                or who["groups"] or int(who["capeff"], 16) != 0:
            self.close()
            raise RuntimeError(f"rootless helper is not plainly {user}: {who}")
        self.who = who

    def run(self, argv):
        """(exit code, ns, CPU ms, output) of argv run as the user."""
        self.proc.stdin.write(json.dumps(argv) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("rootless helper exited")
        r = json.loads(line)
        return r["code"], r["ns"], r["cpu_ms"], r["out"]

    def root(self, rt):
        """The runtime's --root under the user's runtime dir, made as the user would have it."""
        d = os.path.join(self.xdg, rt)
        if not os.path.isdir(d):
            os.mkdir(d, 0o700)
            os.chown(d, self.uid, self.gid)
        return d

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------------------------
# Bundles.


class Bundles:
    """Bundle directories. Minimal ones are shared (no cgroupsPath: each runtime names the cgroup
    after the id); Docker-like ones are written per container, as an engine does, so each gets
    its own cgroupsPath /hutch-bench/<runtime>/<id>."""

    def __init__(self, work, rootfs, minimal, docker):
        self.work = work
        self.dir = os.path.join(work, "bundles")
        os.makedirs(self.dir, exist_ok=True)
        self.shared = {}
        for args_name, args in (("true", ["/bin/true"]), ("sleep", ["sleep", "3600"])):
            c = json.loads(json.dumps(minimal))
            c["process"]["args"] = args
            d = os.path.join(self.dir, f"min-{args_name}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(c, f, indent=1)
            self.shared[("min", args_name)] = d
        self.templates = {}
        for kind, seccomp in (("docker", True), ("docker-noseccomp", False)):
            for args_name, args in (("true", ["/bin/true"]), ("sleep", ["sleep", "3600"])):
                c = json.loads(json.dumps(docker))
                c["process"]["args"] = args
                if not seccomp:
                    c["linux"].pop("seccomp", None)
                c["linux"]["cgroupsPath"] = "@CGROUP@"
                self.templates[(kind, args_name)] = json.dumps(c, indent=1)

    def add_rootless(self, minimal, uid, gid):
        """The minimal config made rootless for uid:gid, shared: `true` to time, `id` to check."""
        for args_name, args in (("true", ["/bin/true"]), ("id", ["sh", "-c", ID_SCRIPT])):
            c = rootless_config(minimal, uid, gid)
            c["process"]["args"] = args
            d = os.path.join(self.dir, f"rootless-{args_name}")
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(c, f, indent=1)
            self.shared[("rootless", args_name)] = d

    def get(self, kind, args_name, rt, cid):
        if kind == "min":
            return self.shared[(kind, args_name)]
        d = os.path.join(self.dir, "per-id", cid)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(self.templates[(kind, args_name)].replace("@CGROUP@", f"/hutch-bench/{rt}/{cid}"))
        return d

    def done(self, kind, cid):
        if kind != "min":
            shutil.rmtree(os.path.join(self.dir, "per-id", cid), ignore_errors=True)


# What the rootless sanity run prints: the uid inside, then the uid and gid maps.
ID_SCRIPT = "id -u; cat /proc/self/uid_map /proc/self/gid_map"


def rootless_config(minimal, uid, gid):
    """What `spec --rootless` makes of a config for uid:gid (runc's and hutch's rule): a user
    namespace mapping the user to 0, no network namespace (an unprivileged user cannot set one
    up), /sys bound read-only (sysfs cannot be mounted without a netns), no uid=/gid= mount
    options (those ids are not mapped), no resources (no cgroup the user may write)."""
    c = json.loads(json.dumps(minimal))
    lin = c.setdefault("linux", {})
    lin["namespaces"] = [n for n in lin.get("namespaces", [])
                         if n.get("type") not in ("network", "user")] + [{"type": "user"}]
    lin["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    lin["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    lin.pop("resources", None)
    mounts = []
    for m in c.get("mounts", []):
        if os.path.normpath(m.get("destination", "")) == "/sys":
            mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            continue
        if "options" in m:
            m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
        mounts.append(m)
    c["mounts"] = mounts
    return c


def make_configs(rootfs, work, minimal_path, docker_path):
    with open(minimal_path) as f:
        minimal = json.load(f)
    minimal["process"]["terminal"] = False
    minimal["root"] = {"path": rootfs, "readonly": True}
    minimal["hostname"] = "bench"

    with open(docker_path) as f:
        docker = json.load(f)
    docker["root"] = {"path": rootfs}
    docker["process"].pop("terminal", None)
    # Docker binds files from /var/lib/docker/containers/<id>/: bind files we made instead.
    files = os.path.join(work, "files")
    os.makedirs(files, exist_ok=True)
    content = {"resolv.conf": "nameserver 127.0.0.1\n", "hostname": "bench\n",
               "hosts": "127.0.0.1 localhost bench\n"}
    for name, text in content.items():
        with open(os.path.join(files, name), "w") as f:
            f.write(text)
    for m in docker["mounts"]:
        if m.get("type") == "bind" and m["source"].startswith("/var/lib/docker/"):
            m["source"] = os.path.join(files, os.path.basename(m["source"]))
    return minimal, docker


# ---------------------------------------------------------------------------------------------
# The measures.


# Global flags to try, in order, when a runtime's plain `run` as the user fails its check.
RL_EXTRA_FLAGS = {
    "crun": [["--cgroup-manager=disabled"]],
    "runc": [["--rootless", "true"]],
}

RL_FLOOR = "floor (unshare -r)"

# The interleaved measures, as --only names them.
MEASURES = ["run:min", "run:docker", "run:docker-noseccomp", "lifecycle:min", "lifecycle:docker",
            "running", "version", "rootless"]


class Bench:
    def __init__(self, a):
        self.a = a
        self.work = a.work
        self.rts = {}  # name -> binary
        for spec in a.runtime:
            name, path = spec.split("=", 1)
            self.rts[name] = shutil.which(path) or path
        self.sealed_fds = []
        for spec in a.runtime_sealed or []:
            # An experiment: the binary run from a sealed memfd this harness made once and holds
            # (hutch skips its own per-command copy when /proc/self/exe is already sealed), to
            # show what that copy costs.
            name, path = spec.split("=", 1)
            fd = os.memfd_create(name, os.MFD_ALLOW_SEALING)
            with open(path, "rb") as f:
                os.write(fd, f.read())
            import fcntl
            fcntl.fcntl(fd, 1033, 1 | 2 | 4 | 8)  # F_ADD_SEALS: SEAL, SHRINK, GROW, WRITE
            self.sealed_fds.append(fd)
            self.rts[name] = f"/proc/{os.getpid()}/fd/{fd}"
        self.roots = {n: os.path.join(self.work, "root", n) for n in self.rts}
        for r in self.roots.values():
            os.makedirs(r, exist_ok=True)
        self.p = Procs(self.work)
        minimal, docker = make_configs(a.rootfs, self.work, a.minimal_config, a.docker_config)
        self.bundles = Bundles(self.work, a.rootfs, minimal, docker)
        self.seq = 0
        # samples[measure][runtime] = [ns, ...]; cpu[measure][runtime] = [ms]
        self.samples, self.cpu = {}, {}
        self.peak, self.fp, self.debug, self.left, self.hf = {}, {}, None, {}, None
        self.failures = {}  # (runtime, measure) -> [count, first output]
        self.ok_runs = {n: 0 for n in self.rts}
        self.pidfile = os.path.join(self.work, "pid")
        self.minimal = minimal
        # Rootless: the user's helper, then per runtime the global flags it needed and what the
        # check saw (rl), or why it cannot run rootless here (rl_na).
        self.user, self.rl, self.rl_na = None, {}, {}

    # -- helpers
    def cid(self, rt):
        self.seq += 1
        return f"{rt}-{os.getpid()}-{self.seq}"

    def base(self, rt):
        return [self.rts[rt], "--root", self.roots[rt]]

    def record(self, measure, rt, ns, ru=None, cpu_ms=None):
        self.samples.setdefault(measure, {}).setdefault(rt, []).append(ns)
        if ru is not None:
            cpu_ms = (ru.ru_utime + ru.ru_stime) * 1000
        if cpu_ms is not None:
            self.cpu.setdefault(measure, {}).setdefault(rt, []).append(cpu_ms)

    def fail(self, rt, measure, output):
        f = self.failures.setdefault((rt, measure), [0, output])
        f[0] += 1
        log(f"{rt}: {measure} failed: {output[:300]}")

    def step(self, rt, measure, argv, record=True):
        ok, ns, ru, out = self.p.run(argv)
        if not ok:
            self.fail(rt, measure, out or "(no output)")
            return False
        if record:
            self.record(measure, rt, ns, ru)
        self.ok_runs[rt] += 1
        return True

    def read_pid(self, rt, measure):
        try:
            with open(self.pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError) as e:
            self.fail(rt, measure, f"--pid-file {self.pidfile}: {e}")
            return None
        self.p.reaped.pop(pid, None)  # alive now: any entry under this pid is stale
        return pid

    def cleanup(self, rt, cid):
        ok, _, _, _ = self.p.run(self.base(rt) + ["delete", "-f", cid])
        self.p.drain()
        return ok

    def create(self, rt, kind, args_name, cid, label=None):
        b = self.bundles.get(kind, args_name, rt, cid)
        unlink_quiet(self.pidfile)
        argv = self.base(rt) + ["create", "--bundle", b, "--pid-file", self.pidfile, cid]
        if not self.step(rt, label or f"create:{kind}", argv, record=label is not None):
            self.cleanup(rt, cid)
            self.bundles.done(kind, cid)
            return None
        pid = self.read_pid(rt, label or f"create:{kind}")
        if pid is None:
            self.cleanup(rt, cid)
            self.bundles.done(kind, cid)
        return pid

    # -- one measure, once, for one runtime
    def m_run(self, rt, kind):
        cid = self.cid(rt)
        b = self.bundles.get(kind, "true", rt, cid)
        if not self.step(rt, f"run:{kind}", self.base(rt) + ["run", "--bundle", b, cid]):
            self.cleanup(rt, cid)
        self.bundles.done(kind, cid)
        self.p.drain()

    def m_lifecycle(self, rt, kind):
        cid = self.cid(rt)
        pid = self.create(rt, kind, "true", cid, label=f"create:{kind}")
        if pid is None:
            return
        if self.step(rt, f"start:{kind}", self.base(rt) + ["start", cid]):
            if not self.p.wait_exit(pid):
                self.fail(rt, f"start:{kind}", f"/bin/true (pid {pid}) did not exit in 10 s")
            if not self.step(rt, f"delete:{kind}", self.base(rt) + ["delete", cid]):
                self.cleanup(rt, cid)
        else:
            self.cleanup(rt, cid)
        self.bundles.done(kind, cid)
        self.p.drain()

    def m_running(self, rt):
        """state, exec, kill and kill+delete of a running `sleep` (Docker-like config)."""
        kind = "docker"
        cid = self.cid(rt)
        pid = self.create(rt, kind, "sleep", cid)
        if pid is None:
            return
        if not self.step(rt, "start:sleep", self.base(rt) + ["start", cid], record=False):
            self.cleanup(rt, cid)
            self.bundles.done(kind, cid)
            return
        ok, ns, ru, out = self.p.run(self.base(rt) + ["state", cid])
        if ok:
            try:
                st = json.loads(self.p_out_text())["status"]
            except (ValueError, KeyError):
                st = None
            if st != "running":
                self.fail(rt, "state", f"status {st!r}, expected 'running'")
            else:
                self.record("state", rt, ns, ru)
        else:
            self.fail(rt, "state", out)
        # exec of /bin/true: in the foreground (the runtime waits for it, as `docker exec` has
        # it wait) and detached (it returns once the process runs; the harness, a subreaper as a
        # shim is, reaps the orphan).
        for measure, flags in (("exec", []), ("exec -d", ["-d"])):
            self.step(rt, measure, self.base(rt) + ["exec"] + flags + [cid, "/bin/true"])
            self.p.drain()
        t0 = time.perf_counter_ns()
        ok, ns, ru, out = self.p.run(self.base(rt) + ["kill", cid, "KILL"])
        if not ok:
            self.fail(rt, "kill", out)
            self.cleanup(rt, cid)
        else:
            self.record("kill", rt, ns, ru)
            if not self.p.wait_exit(pid):
                self.fail(rt, "kill", f"sleep (pid {pid}) still alive 10 s after kill")
            ok, ns, ru, out = self.p.run(self.base(rt) + ["delete", cid])
            if ok:
                self.record("delete after kill", rt, ns, ru)
                self.record("kill+delete", rt, time.perf_counter_ns() - t0)
            else:
                self.fail(rt, "delete after kill", out)
                self.cleanup(rt, cid)
        self.bundles.done(kind, cid)
        self.p.drain()

    def p_out_text(self):
        with open(self.p.out, errors="replace") as f:
            return f.read()

    # -- rootless
    def rootless_setup(self):
        """Starts the user's helper and checks, per runtime, that `run` as that user really runs
        the container: exit status 0 and, printed inside, uid 0 mapped from the user's uid and
        gid. A runtime that cannot is left out of the rootless row with the reason (a failure
        for hutch only: hutch must run rootless)."""
        try:
            self.user = AsUser(self.a.rootless_user, self.a.setpriv, self.work)
        except (KeyError, OSError, RuntimeError) as e:
            reason = f"no rootless helper as {self.a.rootless_user}: {e}"
            for rt in self.rts:
                self.rl_na[rt] = reason
            if "hutch" in self.rts:
                self.fail("hutch", "run:rootless (check)", reason)
            return
        u = self.user
        self.bundles.add_rootless(self.minimal, u.uid, u.gid)
        bundle = self.bundles.shared[("rootless", "id")]
        want = ["0", f"0 {u.uid} 1", f"0 {u.gid} 1"]
        for rt, path in self.rts.items():
            if path.startswith("/proc/"):
                self.rl_na[rt] = "runs from a memfd held by the root harness"
                continue
            tried = []
            # Plain first (--rootless auto sees euid != 0); then what each runtime documents
            # for a rootless caller without a usable cgroup.
            for flags in [[]] + RL_EXTRA_FLAGS.get(rt, []):
                cid = self.cid(rt)
                base = [path, "--root", u.root(rt)] + flags
                code, _, _, out = u.run(base + ["run", "--bundle", bundle, cid])
                lines = [" ".join(l.split()) for l in out.splitlines()]
                seen = any(lines[i:i + 3] == want for i in range(len(lines)))
                if code == 0 and seen:
                    self.rl[rt] = {"flags": flags, "check": "; ".join(want)}
                    break
                u.run(base + ["delete", "-f", cid])
                why = (f"exit {code}" + (f": {out.strip().splitlines()[-1][:200]}" if out.strip() else "")
                       if code != 0 else f"ran, but printed {out.strip()[:200]!r}, not {want!r}")
                tried.append(f"{' '.join(flags) or 'no flags'}: {why}")
            if rt not in self.rl:
                self.rl_na[rt] = "; ".join(tried)
                if rt == "hutch":
                    self.fail(rt, "run:rootless (check)", self.rl_na[rt])
        log("rootless as " + f"{u.user} ({u.uid}:{u.gid}): " + ", ".join(
            [f"{rt} ok{' with ' + ' '.join(v['flags']) if v['flags'] else ''}"
             for rt, v in self.rl.items()] + [f"{rt} n/a ({why})" for rt, why in self.rl_na.items()]))

    def rl_base(self, rt):
        return [self.rts[rt], "--root", self.user.root(rt)] + self.rl[rt]["flags"]

    def m_rootless(self, rt):
        cid = self.cid(rt)
        b = self.bundles.shared[("rootless", "true")]
        code, ns, cpu_ms, out = self.user.run(self.rl_base(rt) + ["run", "--bundle", b, cid])
        if code == 0:
            self.record("run:rootless", rt, ns, cpu_ms=cpu_ms)
            self.ok_runs[rt] += 1
        else:
            self.fail(rt, "run:rootless", out.strip() or f"exit {code}, no output")
            self.user.run(self.rl_base(rt) + ["delete", "-f", cid])

    def f_rootless(self, name):
        """The rootless floor: unshare(1) as the user, with the namespaces of the rootless
        config (user mapped to 0, pid, mount with a fresh /proc, ipc, uts), exec true."""
        code, ns, cpu_ms, out = self.user.run(
            [shutil.which("unshare") or "/usr/bin/unshare", "-r", "-fpmiu", "--mount-proc", "true"])
        if code == 0:
            self.record("run:rootless", name, ns, cpu_ms=cpu_ms)
        else:
            self.fail(name, "floor", out.strip() or f"exit {code}")

    def m_version(self, rt):
        self.step(rt, "version", [self.rts[rt], "--version"])

    # floors
    def f_run(self, name, argv):
        ok, ns, ru, out = self.p.run(argv)
        if ok:
            self.record("run:min", name, ns, ru)
        else:
            self.fail(name, "floor", out)

    def floors(self):
        f = {}
        if self.a.floor:
            f["floor (C)"] = lambda: self.f_run("floor (C)", [self.a.floor, self.a.rootfs])
        unshare = shutil.which("unshare")
        if unshare:
            f["floor (unshare)"] = lambda: self.f_run(
                "floor (unshare)", [unshare, "-fpmnui", "--mount-proc", "true"])
        true = shutil.which("true") or "/bin/true"

        def exec_true():
            ok, ns, ru, out = self.p.run([true])
            if ok:
                self.record("version", "floor (exec true)", ns, ru)
        f["floor (exec true)"] = exec_true
        return f

    # -- the rounds
    def selected(self, measure):
        return not self.a.only or measure in self.a.only

    def rounds(self):
        names = list(self.rts)
        measures = [
            ("run:min", lambda rt: self.m_run(rt, "min")),
            ("run:docker", lambda rt: self.m_run(rt, "docker")),
            ("run:docker-noseccomp", lambda rt: self.m_run(rt, "docker-noseccomp")),
            ("lifecycle:min", lambda rt: self.m_lifecycle(rt, "min")),
            ("lifecycle:docker", lambda rt: self.m_lifecycle(rt, "docker")),
            ("running", self.m_running),
            ("version", self.m_version),
            ("rootless", self.m_rootless),
        ]
        assert [m for m, _ in measures] == MEASURES
        measures = [(m, fn) for m, fn in measures if self.selected(m)]
        floors = self.floors()
        if self.rl:
            floors[RL_FLOOR] = lambda: self.f_rootless(RL_FLOOR)
        n = self.a.rounds + self.a.warmup
        t_start = time.monotonic()
        for r in range(n):
            if r == self.a.warmup:  # forget the warm-up rounds
                self.samples, self.cpu = {}, {}
            for mname, fn in measures:
                tasks = [(rt, fn) for rt in names]
                if mname == "rootless":
                    tasks = [(rt, fn) for rt in names if rt in self.rl]
                    if tasks:
                        tasks.append((RL_FLOOR, None))
                if mname == "run:min":
                    tasks += [(fl, None) for fl in floors if fl not in ("floor (exec true)", RL_FLOOR)]
                if mname == "version":
                    tasks.append(("floor (exec true)", None))
                for who, f in rotated(tasks, r):
                    if f is None:
                        floors[who]()
                    else:
                        f(who)
            if r == 0 or (r + 1) % 10 == 0 or r == n - 1:
                log(f"round {r + 1}/{n} ({time.monotonic() - t_start:.0f} s)")

    def throughput(self):
        """N containers `run -d` (Docker-like, sleep), P at a time, until all run; then
        `delete -f` of all, P at a time. Rounds rotate the runtime order."""
        names = list(self.rts)
        for r in range(self.a.tp_rounds):
            for rt in rotated(names, r):
                ids = [self.cid(rt) for _ in range(self.a.tp_count)]
                bundles = {c: self.bundles.get("docker", "sleep", rt, c) for c in ids}
                ok1, ns1 = self.parallel(rt, "run -d", [
                    self.base(rt) + ["run", "-d", "--bundle", bundles[c], c] for c in ids])
                ok2, ns2 = self.parallel(rt, "delete -f", [
                    self.base(rt) + ["delete", "-f", c] for c in ids])
                if ok1:
                    self.record(f"tp:run-d", rt, ns1)
                if ok2:
                    self.record(f"tp:delete-f", rt, ns2)
                for c in ids:
                    self.bundles.done("docker", c)
                time.sleep(0.05)
                self.p.drain()
            log(f"throughput round {r + 1}/{self.a.tp_rounds}")

    def parallel(self, rt, what, cmds):
        all_ok = True
        t0 = time.perf_counter_ns()
        outs = {i: os.path.join(self.work, f"out-par-{self.seq}-{i}") for i in range(len(cmds))}
        for i, ok, output in self.p.bounded(list(outs), lambda i: (cmds[i], outs[i]),
                                            self.a.tp_par):
            if ok:
                self.ok_runs[rt] += 1
            else:
                all_ok = False
                self.fail(rt, f"{self.a.tp_count}x {what}", f"{cmds[i][-1]}: {output}")
        return all_ok, time.perf_counter_ns() - t0

    def peak_rss(self):
        """Peak RSS of create, start, delete and run, through the small forking rusage wrapper
        (see rusage.c for why not wait4 of the harness's own children)."""
        self.peak = {}
        if not self.a.rusage:
            return
        ru = os.path.join(self.work, "rusage.txt")

        def measured(rt, measure, argv):
            ok, _, _, out = self.p.run([self.a.rusage, ru] + argv)
            if not ok:
                self.fail(rt, f"{measure} (peak RSS)", out)
                return False
            with open(ru) as f:
                self.peak.setdefault(measure, {}).setdefault(rt, []).append(int(f.read().split()[0]))
            return True

        for i in range(self.a.fp_count):
            for rt in rotated(list(self.rts), i):
                for kind in ("min", "docker"):
                    cid = self.cid(rt)
                    b = self.bundles.get(kind, "true", rt, cid)
                    unlink_quiet(self.pidfile)
                    if measured(rt, f"create:{kind}", self.base(rt) + [
                            "create", "--bundle", b, "--pid-file", self.pidfile, cid]):
                        pid = self.read_pid(rt, f"create:{kind} (peak RSS)")
                        if pid is not None and measured(rt, f"start:{kind}", self.base(rt) + ["start", cid]):
                            self.p.wait_exit(pid)
                            measured(rt, f"delete:{kind}", self.base(rt) + ["delete", cid])
                    self.cleanup(rt, cid)
                    self.bundles.done(kind, cid)
                    cid = self.cid(rt)
                    b = self.bundles.get(kind, "true", rt, cid)
                    if not measured(rt, f"run:{kind}", self.base(rt) + ["run", "--bundle", b, cid]):
                        self.cleanup(rt, cid)
                    self.bundles.done(kind, cid)
                measured(rt, "version", [self.rts[rt], "--version"])
                self.p.drain()

    def footprint(self):
        """Memory and processes a created (not started) and a running container leave, per
        container: everything descending from this subreaper once the runtime has exited."""
        k = self.a.fp_count
        for rt in self.rts:
            res = {}
            for kind in ("min", "docker"):
                self.p.drain()
                before = set(descendants(self.p.me))
                shm0 = shmem_kib()
                ids, inits = [], []
                for _ in range(k):
                    c = self.cid(rt)
                    pid = self.create(rt, kind, "sleep", c)
                    if pid is not None:
                        ids.append(c)
                        inits.append(pid)
                if len(ids) == k:
                    shm = (shmem_kib() - shm0) / k
                    procs = [p for p in descendants(self.p.me) if p not in before]
                    res[f"created:{kind}"] = per_container(procs, k, shm)
                    started = all(self.step(rt, "start (footprint)", self.base(rt) + ["start", c],
                                            record=False) for c in ids)
                    if started:
                        time.sleep(0.1)
                        procs = [p for p in descendants(self.p.me)
                                 if p not in before and p not in inits]
                        # the container's own processes live in its pid namespace: leave them out
                        extra = [p for p in procs if not self.in_container(p, inits)]
                        res[f"running:{kind}"] = per_container(extra, k, None)
                for c in ids:
                    self.cleanup(rt, c)
                    self.bundles.done(kind, c)
            self.fp[rt] = res
        self.p.drain()

    @staticmethod
    def in_container(pid, inits):
        try:
            ns = os.readlink(f"/proc/{pid}/ns/pid")
            return any(os.readlink(f"/proc/{i}/ns/pid_for_children") == ns
                       or os.readlink(f"/proc/{i}/ns/pid") == ns for i in inits)
        except OSError:
            return False

    def hutch_debug(self):
        """hutch's own --debug timing lines for create (Docker-like): the seccomp compile and
        the per-phase timings, medians over a few creates."""
        if "hutch" not in self.rts:
            return
        rt = "hutch"
        logf = os.path.join(self.work, "hutch-debug.json")
        phases, lines = {}, []
        for i in range(self.a.debug_runs):
            cid = self.cid(rt)
            b = self.bundles.get("docker", "true", rt, cid)
            unlink_quiet(logf)
            argv = [self.rts[rt], "--root", self.roots[rt], "--debug", "--log", logf,
                    "--log-format", "json", "create", "--bundle", b, cid]
            ok, ns, ru, out = self.p.run(argv)
            if not ok:
                self.fail(rt, "create --debug", out)
            self.cleanup(rt, cid)
            self.bundles.done("docker", cid)
            try:
                with open(logf) as f:
                    recs = [json.loads(l) for l in f if l.strip()]
            except (OSError, ValueError) as e:
                recs = []
                self.fail(rt, "create --debug", f"log unreadable: {e}")
            for rec in recs:
                msg = rec.get("msg", "")
                if i == 0 and ("seccomp" in msg or msg.startswith("timing:")):
                    lines.append(msg)
                if msg.startswith("timing: ") and " at " in msg:
                    name, _, val = msg[len("timing: "):].rpartition(" at ")
                    try:
                        v, unit = val.split()
                        v = float(v) / (1000 if unit in ("µs", "us") else 1)
                        phases.setdefault(name, []).append(v)
                    except ValueError:
                        pass
        self.debug = (lines, {n: statistics.median(v) for n, v in phases.items()},
                      list(phases))

    def hyperfine(self):
        """The headline figure, as a user reproduces it: `hyperfine -N` on `run` of /bin/true
        with the minimal config and a fixed id (`run` deletes the container when it exits), each
        runtime in a block of runs, not interleaved. Two passes, the second in reverse order, so
        no runtime always follows the same one; their times are pooled."""
        self.hf = None
        hf = shutil.which("hyperfine")
        if not (self.a.hyperfine and hf):
            return
        b = self.bundles.shared[("min", "true")]
        commands = [(rt, " ".join(self.base(rt) + ["run", "--bundle", b, "hf-" + rt]))
                    for rt in self.rts]
        if self.a.floor:
            commands.append(("floor (C)", f"{self.a.floor} {self.a.rootfs}"))
        times = {name: [] for name, _ in commands}
        for n, order in enumerate((commands, commands[::-1])):
            js = os.path.join(self.work, f"hyperfine-{n}.json")
            argv = [hf, "-N", "--style", "none", "--warmup", "5", "--runs",
                    str(self.a.hyperfine), "--export-json", js]
            for name, cmd in order:
                argv += ["-n", name, cmd]
            code, out = self.p.output(argv)
            self.p.drain()
            if code != 0:
                self.fail("hyperfine", "headline", out.strip()[-500:])
                return
            with open(js) as f:
                for res in json.load(f)["results"]:
                    times[res["command"]] += [t * 1e3 for t in res["times"]]
        self.hf = {"commands": commands, "times": times}

    def leftovers(self):
        """State the runtimes left behind: state dirs, cgroups, processes."""
        self.p.drain()
        left = {}
        for rt, root in self.roots.items():
            items = []
            ents = [e for e in os.listdir(root) if not e.startswith(".")] if os.path.isdir(root) else []
            if ents:
                items.append(f"{len(ents)} entries in --root ({', '.join(sorted(ents)[:4])})")
            cg = []
            for ctrl in cgroup_controller_dirs():
                d = os.path.join(ctrl, "hutch-bench", rt)
                if os.path.isdir(d):
                    subs = [s for s in os.listdir(d) if os.path.isdir(os.path.join(d, s))]
                    if subs:
                        cg.append(f"{ctrl}: {len(subs)}")
                    for s in subs:
                        rmdir_quiet(os.path.join(d, s))
                    rmdir_quiet(d)
            if cg:
                items.append("cgroups left under hutch-bench/" + rt + ": " + "; ".join(sorted(set(cg))[:6]))
            left[rt] = items
        for rt in self.rl:
            root = os.path.join(self.user.xdg, rt)
            ents = [e for e in os.listdir(root) if not e.startswith(".")] if os.path.isdir(root) else []
            if ents:
                left.setdefault(rt, []).append(
                    f"rootless: {len(ents)} entries in --root ({', '.join(sorted(ents)[:4])})")
        procs = descendants(self.p.me)
        if procs:
            left["(processes)"] = [f"{len(procs)} processes still under the harness: "
                                   + ", ".join(f"{p} {comm_of(p)}" for p in procs[:6])]
            for p in procs:
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
            time.sleep(0.2)
            self.p.drain()
        for ctrl in cgroup_controller_dirs():
            rmdir_quiet(os.path.join(ctrl, "hutch-bench"))
        self.left = left


# ---------------------------------------------------------------------------------------------
# Report.

ROOTLESS_LABEL = "run `/bin/true` rootless, minimal config made rootless"

ROWS = [
    ("run:min", "run `/bin/true`, minimal `spec` config"),
    ("run:docker", "run `/bin/true`, Docker-like config"),
    ("run:docker-noseccomp", "run `/bin/true`, Docker-like without seccomp"),
    ("create:min", "create (minimal)"),
    ("start:min", "start (minimal)"),
    ("delete:min", "delete (minimal, stopped)"),
    ("create:docker", "create (Docker-like)"),
    ("start:docker", "start (Docker-like)"),
    ("delete:docker", "delete (Docker-like, stopped)"),
    ("state", "state of a running container"),
    ("exec", "exec `/bin/true` into a running container"),
    ("exec -d", "exec -d `/bin/true` into a running container"),
    ("kill", "kill KILL of a running sleep"),
    ("delete after kill", "delete after kill"),
    ("kill+delete", "kill + reap + delete"),
    ("version", "`--version`"),
    ("tp:run-d", None),
    ("tp:delete-f", None),
]


def fmt_ms(ns):
    ms = ns / MS
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def ratio_cells(row, rts, missing):
    """One table cell a runtime: median / mean (the median's ratio to the fastest), the fastest
    in bold; `missing(rt)` for a runtime without samples."""
    meds = {rt: statistics.median(row[rt]) for rt in rts if row.get(rt)}
    best = min(meds.values()) if meds else None
    cells = []
    for rt in rts:
        if rt not in meds:
            cells.append(missing(rt))
            continue
        m = meds[rt]
        s = f"{fmt_ms(m)} / {fmt_ms(statistics.mean(row[rt]))} ({m / best:.2f}×)"
        cells.append(f"**{s}**" if m == best else s)
    return cells


def table_head(first, cols):
    return ["| " + " | ".join([first] + cols) + " |", "|---" * (len(cols) + 1) + "|"]


def report(b, a, meta):
    rts = list(b.rts)
    floors = ["floor (C)", "floor (unshare)", "floor (exec true)"]
    L = []
    L.append(f"# hutch benchmark, {meta['date']}{' (--quick)' if a.quick else ''}")
    L.append("")
    L.append(f"- host: {meta['host']}, {meta['cpus']} CPUs ({meta['cpu']}), {meta['mem']}")
    L.append(f"- kernel: {meta['kernel']}; cgroups: {meta['cgroups']}")
    L.append(f"- load average: {meta['load_before']} before, {meta['load_after']} after; "
             f"wall time {meta['wall']:.0f} s")
    for rt in rts:
        src = f" (built from {a.hutch_source})" if rt == "hutch" and a.hutch_source else ""
        L.append(f"- {rt}: `{b.rts[rt]}`{src} — {meta['versions'][rt]}")
    L.append(f"- rounds: {a.rounds} interleaved (+{a.warmup} warm-up, discarded), order rotated "
             f"each round; " + (f"only {', '.join(a.only)}" if a.only else
                                f"throughput: {a.tp_rounds} rounds of {a.tp_count} containers, "
                                f"{a.tp_par} at a time"))
    L.append("- every runtime ran inside one private mount namespace with "
             "/sys/fs/cgroup/unified/cgroup.controllers bound to /dev/null (so crun accepts the "
             "hybrid layout), each with its own --root, under one subreaper"
             if meta["cgroups"].startswith("hybrid") else
             "- every runtime ran inside one private mount namespace, each with its own --root, "
             "under one subreaper")
    L.append("")
    L += headline_report(b, a)
    rootful = [(k, label) for k, label in ROWS if not k.startswith("tp:")
               and (not a.only or b.samples.get(k))]
    if rootful:
        L.append("## Latency (ms): median / mean, and the median's ratio to the fastest runtime")
        L.append("")
        L += table_head("measure", rts + ["floor"])
    for key, label in rootful:
        row = b.samples.get(key, {})
        cells = ratio_cells(row, rts, lambda rt: "failed" if (rt, key) in b.failures else "—")
        fl = []
        for f in floors:
            if row.get(f):
                fl.append(f"{fmt_ms(statistics.median(row[f]))} / {fmt_ms(statistics.mean(row[f]))} "
                          f"{f[len('floor '):]}")
        L.append(f"| {label} | " + " | ".join(cells) + " | " + "; ".join(fl) + " |")
    if rootful:
        L.append("")
    if not a.only or {"run:docker", "run:docker-noseccomp"} <= set(a.only):
        L.append("Seccomp's share (median of run Docker-like minus run Docker-like without seccomp): "
                 + ", ".join(
                     f"{rt} {fmt_ms(statistics.median(b.samples['run:docker'][rt]) - statistics.median(b.samples['run:docker-noseccomp'][rt]))} ms"
                     for rt in rts if b.samples.get("run:docker", {}).get(rt)
                     and b.samples.get("run:docker-noseccomp", {}).get(rt)) + ".")
    L.append("")
    if b.selected("rootless"):
        L += rootless_report(b, a, rts)
    if a.only:
        L += cpu_table(b, rts)
        L += failures_section(b)
        L.append(method_text(a))
        return "\n".join(L) + "\n"
    L.append(f"## Throughput (ms): {a.tp_count} containers (Docker-like, `sleep`), {a.tp_par} at a time")
    L.append("")
    L += table_head("measure", rts)
    for key, label in (("tp:run-d", f"{a.tp_count}× `run -d` until all run"),
                       ("tp:delete-f", f"{a.tp_count}× `delete -f`")):
        cells = ratio_cells(b.samples.get(key, {}), rts, lambda rt: "failed")
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("## Footprint")
    L.append("")
    L += table_head("measure", rts)

    def rss_row(label, key, src):
        cells = []
        for rt in rts:
            v = src.get(key, {}).get(rt)
            cells.append(f"{statistics.median(v) / 1024:.1f} MiB" if v else "—")
        L.append(f"| {label} | " + " | ".join(cells) + " |")

    rss_row("peak RSS of `create` (Docker-like)", "create:docker", b.peak)
    rss_row("peak RSS of `create` (minimal)", "create:min", b.peak)
    rss_row("peak RSS of `start` (Docker-like)", "start:docker", b.peak)
    rss_row("peak RSS of `delete` (Docker-like)", "delete:docker", b.peak)
    rss_row("peak RSS of `run` (Docker-like)", "run:docker", b.peak)
    rss_row("peak RSS of `--version`", "version", b.peak)
    L.append("| binary size | " + " | ".join(
        f"{os.stat(b.rts[rt]).st_size / 2**20:.2f} MiB{meta['libs'][rt]}"
        for rt in rts) + " |")
    for key, label in (("created:docker", "held per created, not started container (Docker-like)"),
                       ("created:min", "held per created, not started container (minimal)"),
                       ("running:docker", "left per running container besides its own processes (Docker-like)")):
        cells = []
        for rt in rts:
            v = b.fp.get(rt, {}).get(key)
            if v is None:
                cells.append("—")
            else:
                n, rss, pss, comms, shm = v
                cells.append(f"{n:g} proc, RSS {rss / 1024:.2f} / PSS {pss / 1024:.2f} MiB"
                             + (f" (`{comms[0]}`)" if comms else "")
                             + (f"; Shmem +{shm / 1024:.2f} MiB" if shm is not None else ""))
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    L.append("")
    L += cpu_table(b, rts)
    if b.debug:
        lines, meds, order = b.debug
        L.append(f"## hutch `--debug` timings of `create` (Docker-like; median of {a.debug_runs})")
        L.append("")
        for n in order:
            L.append(f"- {n}: {meds[n]:.2f} ms")
        sec = [l for l in lines if "seccomp" in l and not l.startswith("timing:")]
        for l in sec:
            L.append(f"- log: `{l}`")
        L.append("")
    if meta.get("seccomp_bench"):
        L.append("## Seccomp compile, hutch's compiler alone (hack/bench-seccomp)")
        L.append("")
        L.append("```")
        L.append(meta["seccomp_bench"].strip())
        L.append("```")
        L.append("")
    L += failures_section(b)
    L.append(method_text(a))
    return "\n".join(L) + "\n"


def headline_report(b, a):
    """The hyperfine figure first: the one a user can check with hyperfine alone."""
    if not b.hf:
        return []
    times = b.hf["times"]
    base = "crun" if times.get("crun") else next(iter(times))
    ref = statistics.median(times[base])
    L = [f"## Headline: `run` of /bin/true, minimal `spec` config, with `hyperfine -N` (ms)", "",
         f"{2 * a.hyperfine} runs per runtime ({a.hyperfine} in each of two passes, the second in "
         "reverse order), 5 warm-up runs per pass; each runtime's runs in one block, a fixed id. "
         "Reproduce (as root, in a private mount namespace with the hybrid workaround on a hybrid "
         "host):", "", "```"]
    L.append("hyperfine -N --warmup 5 " + " ".join(f"'{cmd}'" for _, cmd in b.hf["commands"]))
    L += ["```", "", f"| runtime | median | mean | min | σ | median / {base} |", "|---|---|---|---|---|---|"]
    for name, _ in b.hf["commands"]:
        v = times[name]
        if not v:
            continue
        L.append(f"| {name} | {fmt_ms(statistics.median(v) * MS)} | {fmt_ms(statistics.mean(v) * MS)} | "
                 f"{fmt_ms(min(v) * MS)} | {fmt_ms(statistics.pstdev(v) * MS)} | "
                 f"{statistics.median(v) / ref:.2f}× |")
    L.append("")
    return L


def cpu_table(b, rts):
    L = ["## CPU time (user+sys, ms, median) per command", ""]
    L += table_head("measure", rts)
    for key, label in ROWS + [("run:rootless", ROOTLESS_LABEL)]:
        if key in b.cpu:
            L.append(f"| {label} | " + " | ".join(
                f"{statistics.median(b.cpu[key][rt]):.1f}" if b.cpu[key].get(rt) else "—"
                for rt in rts) + " |")
    L.append("")
    return L


def rootless_report(b, a, rts):
    """The rootless row: its own table, each cell's ratio taken to crun's median (the
    comparison issue 12 asks for), else to the fastest; a runtime that could not run
    rootless here says why."""
    L = []
    row = b.samples.get("run:rootless", {})
    meds = {rt: statistics.median(row[rt]) for rt in rts if row.get(rt)}
    ref_name = "crun" if "crun" in meds else "the fastest"
    ref = meds.get("crun") or (min(meds.values()) if meds else None)
    L.append(f"## Rootless (ms): median / mean, and the median's ratio to {ref_name}")
    L.append("")
    if not a.rootless_user:
        L += ["- not measured: no rootless user (hack/bench passes one unless --no-rootless).", ""]
        return L
    u = b.user
    if u:
        L.append(f"- as `{u.user}` (uid {u.uid}, gid {u.gid}; no supplementary groups, no "
                 "capabilities), through one helper started with `setpriv --reuid --regid "
                 "--clear-groups` inside the same private mount namespace; each runtime's --root "
                 f"is under a 0700 directory of that user (XDG_RUNTIME_DIR set to it)")
    L.append("- config: the minimal config made rootless as `spec --rootless` does (user "
             "namespace mapping the user to 0, no network namespace, /sys bound read-only, "
             "no resources, no cgroupsPath); same read-only busybox rootfs, owned by root")
    for rt in rts:
        if rt in b.rl:
            flags = " ".join(b.rl[rt]["flags"])
            L.append(f"- {rt}: checked before timing: exit 0, printed inside `{b.rl[rt]['check']}` "
                     f"(`id -u`, uid_map, gid_map); global flags: {f'`{flags}`' if flags else 'none'}")
        elif rt in b.rl_na:
            L.append(f"- {rt}: n/a: {b.rl_na[rt]}")
    L.append("")
    L += table_head("measure", rts + ["floor"])
    cells = []
    for rt in rts:
        if rt in meds:
            m = meds[rt]
            c = f"{fmt_ms(m)} / {fmt_ms(statistics.mean(row[rt]))} ({m / ref:.2f}×)"
            cells.append(f"**{c}**" if m == min(meds.values()) else c)
        elif rt in b.rl_na:
            cells.append("n/a (see above)")
        else:
            cells.append("failed" if (rt, "run:rootless") in b.failures else "—")
    fl = row.get(RL_FLOOR)
    floor = f"{fmt_ms(statistics.median(fl))} / {fmt_ms(statistics.mean(fl))} (unshare -r)" if fl else ""
    L.append(f"| {ROOTLESS_LABEL} | " + " | ".join(cells) + f" | {floor} |")
    L.append("")
    return L


def failures_section(b):
    L = ["## Failures and leftovers", ""]
    any_issue = False
    for (rt, m), (n, out) in sorted(b.failures.items()):
        any_issue = True
        L.append(f"- {rt}: {m} failed {n}×: `{out.splitlines()[-1][:300] if out else ''}`")
    for rt, items in b.left.items():
        for it in items:
            any_issue = True
            L.append(f"- {rt}: {it}")
    if not any_issue:
        L.append("- none: every command succeeded; no state, cgroups or processes left behind.")
    L.append("")
    return L


def method_text(a):
    body = ("Method: hack/bench (hack/bench.d/harness.py). Times are wall-clock from spawn to "
            "reap of the runtime command, harness overhead included alike for every column. "
            "`start` is timed on its own; the harness then waits for `/bin/true` to exit and "
            "reaps it (as a shim would) before timing `delete`. CPU time is the wait4() rusage of "
            "the runtime command; peak RSS is its ru_maxrss taken through a small forking "
            "wrapper (hack/bench.d/rusage.c), median of " + str(a.fp_count) + " runs per "
            "runtime (the container's init is not a waited child, so it is not counted). "
            "Footprint: processes descending from the harness (a subreaper) after `create` "
            "returned (or after `start`, leaving out the container's own pid namespace), "
            "per container; Shmem is the system-wide /proc/meminfo delta per created "
            "container (a memfd copy of the runtime binary shows there; noisy), "
            "per container. `kill + reap + delete`: from the start of `kill` until `delete` "
            "returned, including the wait for the init to die."
            if not a.only else
            "Method: hack/bench (hack/bench.d/harness.py) --only. Times are wall-clock from "
            "spawn to reap of the runtime command, harness overhead included alike for every "
            "column; CPU time is the wait4() rusage of the runtime command.")
    return (body
            + (" Rootless: `run` as the rootless user, spawned and reaped by a helper running as "
               "that user, timed the same way." if a.rootless_user else ""))


def gather_meta(b):
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return "?"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) / 2**20:.1f} GiB RAM"
    except (OSError, ValueError):
        pass
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        cg = "v2 (unified)"
    elif os.path.isdir("/sys/fs/cgroup/unified"):
        cg = "hybrid (v1 controllers + v2 at /sys/fs/cgroup/unified)"
    else:
        cg = "v1"
    versions, libs = {}, {}
    for rt, path in b.rts.items():
        v = first_line([path, "--version"]).replace("\n", "; ")
        versions[rt] = v
        try:
            out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
            n = sum(1 for l in out.splitlines() if "=>" in l)
            libs[rt] = f" (+{n} shared libs)" if n else " (static)"
        except OSError:
            libs[rt] = ""
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "cpu": cpu, "mem": mem, "cgroups": cg, "versions": versions, "libs": libs,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main():
    if sys.argv[1:2] == ["--serve"] and len(sys.argv) == 3:
        return serve(sys.argv[2])
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--minimal-config", required=True)
    ap.add_argument("--docker-config", required=True)
    ap.add_argument("--runtime", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--runtime-sealed", action="append", metavar="NAME=PATH",
                    help="also run PATH from a sealed memfd made once by the harness")
    ap.add_argument("--floor")
    ap.add_argument("--hutch-source", help="git describe of the hutch tree that was built")
    ap.add_argument("--hyperfine", type=int, default=0, metavar="RUNS",
                    help="the headline: `run` minimal under hyperfine -N, RUNS runs per pass")
    ap.add_argument("--rusage", help="the rusage wrapper (rusage.c), for peak RSS")
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--tp-rounds", type=int, default=3)
    ap.add_argument("--tp-count", type=int, default=50)
    ap.add_argument("--tp-par", type=int, default=8)
    ap.add_argument("--fp-count", type=int, default=4)
    ap.add_argument("--debug-runs", type=int, default=10)
    ap.add_argument("--seccomp-bench", help="file with hack/bench-seccomp's output")
    ap.add_argument("--out", help="write the markdown report here too")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rootless-user", metavar="USER",
                    help="also time `run` of /bin/true rootless, as USER (the rootless row)")
    ap.add_argument("--setpriv", default=shutil.which("setpriv") or "/usr/bin/setpriv")
    ap.add_argument("--only", metavar="LIST", type=lambda v: [m for m in v.split(",") if m],
                    help="only these interleaved measures (comma-separated: " + ", ".join(MEASURES)
                    + "), and `headline` for the hyperfine figure; skips throughput, footprint "
                    "and --debug timings")
    a = ap.parse_args()
    bad = [m for m in a.only or [] if m not in MEASURES + ["headline"]]
    if bad:
        ap.error(f"--only: unknown measure {', '.join(bad)} (known: {', '.join(MEASURES)})")

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("prctl(PR_SET_CHILD_SUBREAPER) failed")
        return 2
    t0 = time.monotonic()
    b = Bench(a)
    meta = gather_meta(b)
    log(f"runtimes: {', '.join(f'{n}={p}' for n, p in b.rts.items())}; work dir {a.work}")
    rootless = b.selected("rootless") and a.rootless_user
    try:
        if rootless:
            b.rootless_setup()
        b.rounds()
        if not a.only:
            b.throughput()
            b.peak_rss()
            b.footprint()
            b.hutch_debug()
        if b.selected("headline"):
            b.hyperfine()
    finally:
        if b.user:
            b.user.close()  # before leftovers(), which kills whatever is still under the harness
        b.leftovers()
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["wall"] = time.monotonic() - t0
    if a.seccomp_bench and os.path.exists(a.seccomp_bench):
        with open(a.seccomp_bench) as f:
            meta["seccomp_bench"] = f.read()
    text = report(b, a, meta)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        log(f"saved {a.out}")
    # Success: every runtime ran every measure at least once and nothing failed; rootless, a
    # runtime that cannot run rootless here is n/a, but hutch must have run.
    missing = []
    if any(b.selected(m) for m in MEASURES if m != "rootless"):
        missing = [rt for rt in b.rts if not any(rt in row for m, row in b.samples.items()
                                                 if m != "run:rootless")]
    if rootless and "hutch" in b.rts and not b.samples.get("run:rootless", {}).get("hutch"):
        missing.append("hutch (rootless)")
    if missing or b.failures:
        log(f"FAILED: {len(b.failures)} failing (runtime, measure) pairs"
            + (f"; no result at all from {', '.join(missing)}" if missing else ""))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
