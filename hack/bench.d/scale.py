#!/usr/bin/env python3
"""hack/bench.d/scale.py: hack/bench --scale (issue 14, "flat cost at 1,000 containers").

What does a step cost when many containers already exist? For each N of the list, ascending, every
runtime's "population" of created, not started containers (the minimal `spec` config, 8 `create`s
at a time) is brought up to N; the populations of all runtimes are present together, so each
runtime sees the same machine. Then, over rounds interleaved across runtimes (order rotated each
round, one warm-up round discarded), a fresh extra container of each runtime goes through `list`,
`list --format json`, `create`, `start`, `state`, `exec true`, `kill KILL`, `delete`, each timed
on its own; and `ps` (table and json) of a container running 500 sleeps. The memory the population
holds is taken at each N before the rounds: PSS of every process its creates left (smaps_rollup),
the v1 memory cgroup of its parent (kernel memory included), and /proc/meminfo deltas (noisy).

It reuses harness.py's Bench (unique ids, per-runtime --root, subreaper, posix_spawn timing,
failures, leftovers) and writes no harness state of its own: every container gets a cgroupsPath
/hutch-bench/<runtime>/<id>, where Bench.leftovers() looks. Run it through hack/bench --scale,
which makes the rootfs and enters the private mount namespace crun needs
(../shared/README.md).
"""

import argparse
import ctypes
import json
import os
import resource
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ of harness.py left in the tree
from harness import (MS, PR_SET_CHILD_SUBREAPER, Bench, comm_of, descendants, failures_section,  # noqa: E402
                     fmt_ms, gather_meta, log, rotated, table_head)

# The steps of a round, in order, as the tables name them.
STEPS = [
    ("list", "`list` (table) with the population present"),
    ("list json", "`list --format json`"),
    ("create", "`create` of one more container"),
    ("start", "`start` of it (`sleep 3600`)"),
    ("state", "`state` of it, running"),
    ("exec", "`exec` `/bin/true` into it (foreground)"),
    ("kill", "`kill KILL` of it"),
    ("delete", "`delete` of it, once its init is reaped"),
    ("ps", "`ps` (default table) of a container of 500 sleeps"),
    ("ps json", "`ps --format json` of that container"),
]

PS_PROCS = 500
# The tag of the last level: N=0 again, once every population is deleted (a drift check).
AGAIN = "0 again"
# The ps container's init: PS_PROCS sleeps in the background, then waits (busybox sh).
PS_SCRIPT = (f"i=0; while [ $i -lt {PS_PROCS} ]; do sleep 3600 & i=$((i+1)); done; wait")
# Before timing a level, wait (at most SETTLE_MAX_S) until the CPUs are this idle over a second:
# making or deleting thousands of containers leaves the kernel work to do afterwards (network
# namespaces are torn down by a kworker, cleanup_net, long after `delete` returned), which would
# otherwise land in the next level's timings.
SETTLE_IDLE = 0.9
SETTLE_MAX_S = 180
# Stop growing a population when the machine would have less than this left (KiB).
MEM_FLOOR_KIB = 2 * 2**20


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def rollup(pid):
    """smaps_rollup's fields (KiB) of pid; empty for a zombie or a process gone."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] == "kB":
                    out[parts[0].rstrip(":")] = int(parts[1])
    except OSError:
        pass
    return out


def idle_fraction(seconds):
    """The share of all CPUs' time spent idle (idle + iowait) over `seconds`, from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(t1 - t0, 1)


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_str(path, value):
    with open(path, "w") as f:
        f.write(str(value))


class Limits:
    """The sandbox's limits that N containers meet, raised where a script may raise them (the
    soft NOFILE to the hard one; sysctls that would block) and restored by restore()."""

    SYSCTLS = ["kernel/pid_max", "kernel/threads-max", "user/max_net_namespaces",
               "user/max_pid_namespaces", "user/max_mnt_namespaces", "user/max_ipc_namespaces",
               "user/max_uts_namespaces", "kernel/keys/root_maxkeys", "fs/file-max"]

    def __init__(self, need):
        self.notes, self.saved = [], {}
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            self.notes.append(f"NOFILE soft {soft} raised to the hard {hard} (harness and the "
                              "runtimes it starts; the hard limit cannot be raised: no "
                              "CAP_SYS_RESOURCE)")
        else:
            self.notes.append(f"NOFILE {soft} (soft = hard)")
        # Each created container holds one or two processes, a handful of namespaces (pid, net,
        # ipc, uts, mnt) and, for runc and crun, a session keyring; the ps containers add 501
        # processes each. Twice that, for margin.
        for key in self.SYSCTLS:
            path = f"/proc/sys/{key}"
            cur = read_int(path)
            if cur is None:
                continue
            if cur < 2 * need:
                try:
                    write_str(path, 2 * need)
                    self.saved[path] = cur
                    self.notes.append(f"{key.replace('/', '.')} {cur} raised to {2 * need} (restored after)")
                except OSError as e:
                    self.notes.append(f"{key.replace('/', '.')} {cur} < {2 * need}, cannot raise: {e}")
            else:
                self.notes.append(f"{key.replace('/', '.')} {cur}")
        for ctrl, fname in (("pids", "pids.max"), ("memory", "memory.limit_in_bytes")):
            path = self.own_cgroup(ctrl)
            limits = []
            while path and path.startswith(f"/sys/fs/cgroup/{ctrl}/"):
                v = read_int(os.path.join(path, fname)) if os.path.exists(os.path.join(path, fname)) else None
                if v is not None and v < 2**62:
                    limits.append(f"{path}: {v}")
                path = os.path.dirname(path)
            self.notes.append(f"{ctrl} cgroup limits over the harness: "
                              + ("; ".join(limits) if limits else "none"))

    @staticmethod
    def own_cgroup(ctrl):
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if ctrl in ctrls.split(","):
                    return f"/sys/fs/cgroup/{ctrl}{path.rstrip('/')}/"
        return None

    def restore(self):
        for path, v in self.saved.items():
            try:
                write_str(path, v)
            except OSError as e:
                log(f"cannot restore {path} to {v}: {e}")


class Scale(Bench):
    def __init__(self, a):
        super().__init__(a)
        # The minimal config, each container with its own cgroupsPath (Bundles' per-id kind).
        for args_name, args in (("sleep", ["sleep", "3600"]), ("ps", ["sh", "-c", PS_SCRIPT])):
            c = json.loads(json.dumps(self.minimal))
            c["process"]["args"] = args
            c["linux"]["cgroupsPath"] = "@CGROUP@"
            self.bundles.templates[("scale", args_name)] = json.dumps(c, indent=1)
        self.pop = {rt: [] for rt in self.rts}  # the population's container ids
        self.pop_procs = {rt: set() for rt in self.rts}  # the processes they left
        self.known = set()  # every process already attributed to a population
        self.kdelta = {rt: {} for rt in self.rts}  # meminfo deltas summed over growth batches
        self.grow_ns = {}  # (rt, N) -> (ns, count) to create the containers added for N
        self.delete_ns = {}  # rt -> (ns, count) to delete -f the whole population
        self.mem = {}  # (rt, N) -> dict
        self.stopped = None  # why growth stopped early, if it did
        self.load = {}  # tag -> 1-minute load average when the level's rounds began
        self.settled = {}  # tag -> (s waited for a quiet machine, idle share reached)
        self.ps_shape = {}  # rt -> (lines, header) of its `ps` table output
        self.extra = None  # (runtime, id) of the round's extra container while it exists (for an interrupted run)

    def grow(self, rt, n):
        """Creates containers, tp_par at a time, until rt's population is n."""
        ids = [self.cid(rt) for _ in range(n - len(self.pop[rt]))]
        if not ids:
            return True
        m0 = meminfo()
        pending = list(ids)
        ok_ids = []

        def start(c):
            b = self.bundles.get("scale", "sleep", rt, c)
            return self.base(rt) + ["create", "--bundle", b, c], os.path.join(self.work, f"out-grow-{c}")

        t0 = time.perf_counter_ns()
        for c, ok, output in self.p.bounded(pending, start, self.a.tp_par):
            if ok:
                ok_ids.append(c)
                self.ok_runs[rt] += 1
            else:
                self.fail(rt, "create (population)", f"{c}: {output}")
                self.cleanup(rt, c)
                self.bundles.done("scale", c)
            if len(ok_ids) % 100 == 0 and meminfo()["MemAvailable"] < MEM_FLOOR_KIB:
                self.stopped = f"{rt}: MemAvailable under {MEM_FLOOR_KIB >> 20} GiB at {len(self.pop[rt]) + len(ok_ids)} containers"
                pending.clear()
        ns = time.perf_counter_ns() - t0
        time.sleep(0.2)  # let the last creates' processes settle before attributing them
        m1 = meminfo()
        for k in ("MemAvailable", "Slab", "Shmem"):
            self.kdelta[rt][k] = self.kdelta[rt].get(k, 0) + (m0[k] - m1[k] if k == "MemAvailable" else m1[k] - m0[k])
        self.pop[rt] += ok_ids
        self.grow_ns[(rt, n)] = (ns, len(ids))
        new = set(descendants(self.p.me)) - self.known
        self.pop_procs[rt] |= new
        self.known |= new
        return len(ok_ids) == len(ids)

    def memory(self, rt, tag):
        """What rt's population holds now: processes, PSS, the v1 memory cgroup of its parent."""
        procs = [p for p in self.pop_procs[rt] if os.path.exists(f"/proc/{p}")]
        mem = [rollup(p) for p in procs]
        cg = "/sys/fs/cgroup/memory/hutch-bench/" + rt
        k = len(self.pop[rt])

        def total(*fields):
            return sum(m.get(f, 0) for m in mem for f in fields)
        self.mem[(rt, tag)] = {
            "k": k, "procs": len(procs), "pss": total("Pss"), "rss": total("Rss"),
            "uss": total("Private_Clean", "Private_Dirty"), "anon": total("Anonymous"),
            "comms": sorted({comm_of(p) for p in procs}),
            "cg": read_int(f"{cg}/memory.usage_in_bytes"), "kmem": read_int(f"{cg}/memory.kmem.usage_in_bytes"),
            "kdelta": dict(self.kdelta[rt]),
        }

    def round(self, rt, tag):
        """One round for rt at the population of level `tag`: list, then one extra container's
        life, timed."""
        key = f"@{tag}"
        for step, flags in (("list", []), ("list json", ["--format", "json"])):
            ok, ns, ru, out = self.p.run(self.base(rt) + ["list"] + flags)
            if not ok:
                self.fail(rt, step + key, out)
                continue
            if flags:
                try:
                    got = len(json.loads(self.p_out_text()) or [])
                except ValueError:
                    got = None
                if got != len(self.pop[rt]):
                    self.fail(rt, step + key, f"listed {got} containers, expected {len(self.pop[rt])}")
                    continue
            self.record(step + key, rt, ns, ru)
        cid = self.cid(rt)
        self.extra = (rt, cid)
        pid = self.create(rt, "scale", "sleep", cid, label="create" + key)
        if pid is None:
            self.extra = None
            return
        if not self.step(rt, "start" + key, self.base(rt) + ["start", cid]):
            self.cleanup(rt, cid)
            self.bundles.done("scale", cid)
            return
        ok, ns, ru, out = self.p.run(self.base(rt) + ["state", cid])
        st = None
        if ok:
            try:
                st = json.loads(self.p_out_text())["status"]
            except (ValueError, KeyError):
                pass
        if st == "running":
            self.record("state" + key, rt, ns, ru)
        else:
            self.fail(rt, "state" + key, out if not ok else f"status {st!r}, expected 'running'")
        self.step(rt, "exec" + key, self.base(rt) + ["exec", cid, "/bin/true"])
        self.p.drain()
        if self.step(rt, "kill" + key, self.base(rt) + ["kill", cid, "KILL"]):
            if not self.p.wait_exit(pid):
                self.fail(rt, "kill" + key, f"sleep (pid {pid}) still alive 10 s after kill")
            if not self.step(rt, "delete" + key, self.base(rt) + ["delete", cid]):
                self.cleanup(rt, cid)
        else:
            self.cleanup(rt, cid)
        self.bundles.done("scale", cid)
        self.extra = None
        self.p.drain()

    def ps_containers(self):
        """One running container of PS_PROCS sleeps (plus its sh) per runtime; {rt: id} of those
        whose processes all came up."""
        got = {}
        for rt in self.rts:
            cid = self.cid(rt)
            pid = self.create(rt, "scale", "ps", cid, label=None)
            if pid is None:
                continue
            if not self.step(rt, "start (ps container)", self.base(rt) + ["start", cid], record=False):
                self.cleanup(rt, cid)
                self.bundles.done("scale", cid)
                continue
            got[rt] = cid
        deadline = time.monotonic() + 30
        for rt, cid in list(got.items()):
            procs = f"/sys/fs/cgroup/pids/hutch-bench/{rt}/{cid}/cgroup.procs"
            while True:
                try:
                    with open(procs) as f:
                        k = len(f.read().split())
                except OSError:
                    k = 0
                if k >= PS_PROCS + 1:
                    break
                if time.monotonic() > deadline:
                    self.fail(rt, "ps container", f"{k} processes in {procs} after 30 s, "
                              f"expected {PS_PROCS + 1}")
                    self.cleanup(rt, cid)
                    self.bundles.done("scale", cid)
                    del got[rt]
                    break
                time.sleep(0.05)
        return got

    def ps_rounds(self, tag, r_total):
        ps = self.ps_containers()
        try:
            for r in range(r_total):
                for rt in rotated(list(ps), r):
                    cid = ps[rt]
                    if self.step(rt, f"ps@{tag}", self.base(rt) + ["ps", cid]) and rt not in self.ps_shape:
                        lines = self.p_out_text().splitlines()
                        self.ps_shape[rt] = (len(lines), " ".join(lines[0].split()) if lines else "")
                    ok, ns, ru, out = self.p.run(self.base(rt) + ["ps", "--format", "json", cid])
                    if not ok:
                        self.fail(rt, f"ps json@{tag}", out)
                        continue
                    try:
                        k = len(json.loads(self.p_out_text()))
                    except (ValueError, TypeError):
                        k = None
                    if k != PS_PROCS + 1:
                        self.fail(rt, f"ps json@{tag}", f"listed {k} pids, expected {PS_PROCS + 1}")
                    else:
                        self.record(f"ps json@{tag}", rt, ns, ru)
        finally:
            for rt, cid in ps.items():
                self.cleanup(rt, cid)
                self.bundles.done("scale", cid)

    def level(self, n, tag):
        """Population n for every runtime, its memory, then the timed rounds, recorded as
        `step@tag`."""
        for rt in self.rts:
            t = time.monotonic()
            self.grow(rt, n)
            log(f"{rt}: population {len(self.pop[rt])} ({time.monotonic() - t:.1f} s); "
                f"MemAvailable {meminfo()['MemAvailable'] >> 20} GiB")
        for rt in self.rts:
            self.memory(rt, tag)
        self.settle(tag)
        names = list(self.rts)
        warm = self.a.warmup
        for r in range(self.a.scale_rounds + warm):
            if r == warm:  # forget the warm-up rounds of this level
                for d in (self.samples, self.cpu):
                    for k in [k for k in d if k.endswith(f"@{tag}")]:
                        del d[k]
            for rt in rotated(names, r):
                self.round(rt, tag)
        self.ps_rounds(tag, self.a.scale_rounds)

    def settle(self, tag):
        """Waits until the machine is quiet (SETTLE_IDLE); records how long it took and the idle
        share it reached, so a level timed on a busy machine says so."""
        t0 = time.monotonic()
        while True:
            idle = idle_fraction(1.0)
            waited = time.monotonic() - t0
            if idle >= SETTLE_IDLE or waited >= SETTLE_MAX_S:
                break
        self.settled[tag] = (waited, idle)
        self.load[tag] = os.getloadavg()[0]
        log(f"settled in {waited:.0f} s (CPUs {idle:.0%} idle)")

    def reap_all(self, timeout=10.0):
        """Waits until nothing is left under the harness (at most `timeout`): `delete -f`
        returns before a killed container's processes are all gone, and leftovers() should
        report only what stays."""
        deadline = time.monotonic() + timeout
        while descendants(self.p.me) and time.monotonic() < deadline:
            time.sleep(0.1)
            self.p.drain()

    def cleanup_all(self):
        """delete -f of every population container, tp_par at a time (and of an interrupted
        round's extra container)."""
        if self.extra:
            rt, cid = self.extra
            self.cleanup(rt, cid)
            self.bundles.done("scale", cid)
            self.extra = None
        for rt in self.rts:
            ids, self.pop[rt] = self.pop[rt], []
            self.kdelta[rt] = {}
            t0 = time.perf_counter_ns()
            for c, ok, _ in self.p.bounded(list(ids), lambda c: (self.base(rt) + ["delete", "-f", c], None),
                                           self.a.tp_par):
                if not ok:
                    self.fail(rt, "delete -f (cleanup)", c)
                self.bundles.done("scale", c)
            if ids:
                self.delete_ns[rt] = (time.perf_counter_ns() - t0, len(ids))
            self.p.drain()


# ---------------------------------------------------------------------------------------------
# Report.


def med(s, key, rt):
    v = s.get(key, {}).get(rt)
    return statistics.median(v) if v else None


def report(b, a, meta, limits):
    rts, ns_ = list(b.rts), [str(n) for n in a.scale] + [AGAIN]
    lo, hi = ns_[0], ns_[-2]
    L = [f"# hutch benchmark --scale {','.join(map(str, a.scale))}, {meta['date']}", ""]
    L.append(f"- host: {meta['host']}, {meta['cpus']} CPUs ({meta['cpu']}), {meta['mem']}")
    L.append(f"- kernel: {meta['kernel']}; cgroups: {meta['cgroups']}")
    L.append(f"- load average: {meta['load_before']} before, {meta['load_after']} after; "
             f"wall time {meta['wall']:.0f} s")
    L.append(f"- before each N's rounds the harness waited for the CPUs to be ≥ {SETTLE_IDLE:.0%} "
             f"idle over 1 s (at most {SETTLE_MAX_S} s; the kernel tears network namespaces "
             "down after `delete` returns): " + ", ".join(
                 f"N={t}: {w:.0f} s, {i:.0%} idle, 1-minute load then {b.load[t]:.2f}"
                 for t, (w, i) in b.settled.items()))
    for rt in rts:
        src = f" (built from {a.hutch_source})" if rt == "hutch" and a.hutch_source else ""
        L.append(f"- {rt}: `{b.rts[rt]}`{src} — {meta['versions'][rt]}")
    L.append(f"- population: created, not started containers of the minimal `spec` config "
             f"(`sleep 3600`, each with cgroupsPath /hutch-bench/<runtime>/<id>), made "
             f"{a.tp_par} `create`s at a time, each runtime in its own --root; at each N every "
             f"runtime's population is present at once ({len(rts)}×N containers on the machine)")
    L.append(f"- rounds: {a.scale_rounds} per N, interleaved across runtimes, order rotated "
             f"each round (+{a.warmup} warm-up, discarded); each round: `list`, `list --format "
             f"json`, then one more container created, started, `state`, `exec`, killed, "
             f"deleted. `ps`: {a.scale_rounds} rounds on one container per runtime running "
             f"{PS_PROCS} sleeps under a `sh` ({PS_PROCS + 1} processes)")
    L.append("")
    L.append(f"## Latency (ms, median) vs N, the number of containers present; × = N={hi} / N={lo}; "
             f"N={AGAIN}: after deleting them all")
    L.append("")
    cols = []
    for rt in rts:
        cols += [f"{rt} N={n}" for n in ns_] + [f"{rt} ×"]
    L += table_head("step", cols)
    for step, label in STEPS:
        cells = []
        for rt in rts:
            ms = [med(b.samples, f"{step}@{n}", rt) for n in ns_]
            cells += [fmt_ms(m) if m is not None else
                      ("failed" if any(k[0] == rt and k[1].startswith(f"{step}@") for k in b.failures) else "—")
                      for m in ms]
            cells.append(f"{ms[-2] / ms[0]:.2f}" if ms[0] and ms[-2] else "—")
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    L.append("")
    if "hutch" in rts and "crun" in rts:
        L.append(f"### The issue's targets at N={hi}")
        L.append("")
        L += table_head("target", ["hutch", "crun", "verdict"])
        for step in ("create", "state", "exec", "kill", "delete"):
            h0, h1 = med(b.samples, f"{step}@{lo}", "hutch"), med(b.samples, f"{step}@{hi}", "hutch")
            if h0 and h1:
                c = med(b.samples, f"{step}@{hi}", "crun")
                L.append(f"| `{step}` at N={hi} within 1.2× of N={lo} | {h1 / h0:.2f}× "
                         f"({fmt_ms(h0)} → {fmt_ms(h1)} ms) | "
                         + (f"{c / med(b.samples, f'{step}@{lo}', 'crun'):.2f}×" if c and med(b.samples, f'{step}@{lo}', 'crun') else "—")
                         + f" | {'met' if h1 / h0 <= 1.2 else 'NOT met'} |")
        for step, n, what in (("list", hi, f"`list` of {hi} ≤ crun"),
                              ("list json", hi, f"`list --format json` of {hi} ≤ crun"),
                              ("ps", lo, f"`ps` of {PS_PROCS + 1} processes ≤ crun (N={lo})"),
                              ("ps", hi, f"`ps` of {PS_PROCS + 1} processes ≤ crun (N={hi})"),
                              ("ps json", lo, f"`ps --format json` of {PS_PROCS + 1} processes ≤ crun (N={lo})"),
                              ("ps json", hi, f"`ps --format json` of {PS_PROCS + 1} processes ≤ crun (N={hi})")):
            h, c = med(b.samples, f"{step}@{n}", "hutch"), med(b.samples, f"{step}@{n}", "crun")
            if h and c:
                L.append(f"| {what} | {fmt_ms(h)} ms | {fmt_ms(c)} ms | "
                         f"{'met' if h <= c else 'NOT met'} ({h / c:.2f}×) |")
        h, c = b.mem.get(("hutch", hi)), b.mem.get(("crun", hi))
        if h and c and h["k"] and c["k"]:
            L.append(f"| PSS of {hi} created containers ≤ crun | {h['pss'] / 1024:.0f} MiB | "
                     f"{c['pss'] / 1024:.0f} MiB | {'met' if h['pss'] <= c['pss'] else 'NOT met'} "
                     f"({h['pss'] / c['pss']:.2f}×) |")
        L.append("")
    L.append(f"## Making the population ({a.tp_par} `create`s at a time)")
    L.append("")
    L += table_head("containers", rts)

    def rate(g):
        return f"{g[0] / MS / 1000:.1f} s ({g[1] / (g[0] / 1e9):.0f}/s)" if g else "—"
    prev = 0
    for n in a.scale:
        if n == prev:
            continue
        L.append(f"| `create` {prev} → {n} | " + " | ".join(rate(b.grow_ns.get((rt, n))) for rt in rts) + " |")
        prev = n
    L.append(f"| `delete -f` of all {a.scale[-1]} | " + " | ".join(rate(b.delete_ns.get(rt)) for rt in rts) + " |")
    L.append("")
    L.append("## Memory held by the population of created, not started containers")
    L.append("")
    L.append("PSS: every process the population's `create`s left (smaps_rollup), summed (RSS, private = "
             "Private_Clean + Private_Dirty, and Anonymous per container alongside); memcg: "
             "`memory.usage_in_bytes` (kmem: `memory.kmem.usage_in_bytes`) of the v1 cgroup "
             "/hutch-bench/<runtime>, the parent of every container's cgroup (charged from the "
             "moment the runtime moves the process in: namespaces made after that count); "
             "meminfo: MemAvailable drop and Slab growth over the `create`s, per container "
             "(system-wide, **noisy**: other work on the machine and the kernel's lazy "
             "network-namespace cleanup land here too).")
    L.append("")
    L += table_head("N", rts)
    for n in ns_:
        cells = []
        for rt in rts:
            m = b.mem.get((rt, n))
            if not m or not m["k"]:
                cells.append("—" if not m else f"{m['procs']} proc")
                continue
            k = m["k"]
            s = (f"{m['procs'] / k:g} proc/ctr (`{'`, `'.join(m['comms'])}`); PSS {m['pss'] / 1024:.0f} MiB "
                 f"= {m['pss'] / k:.0f} KiB/ctr (RSS {m['rss'] / k:.0f}, private {m['uss'] / k:.0f}, "
                 f"anonymous {m['anon'] / k:.0f})")
            if m["cg"] is not None:
                s += f"; memcg {m['cg'] / 2**20:.0f} MiB = {m['cg'] / 1024 / k:.0f} KiB/ctr"
                if m["kmem"] is not None:
                    s += f" (kmem {m['kmem'] / 1024 / k:.0f})"
            kd = m["kdelta"]
            s += (f"; meminfo: MemAvailable drop {kd.get('MemAvailable', 0) / k:+.0f}, "
                  f"Slab {kd.get('Slab', 0) / k:+.0f}, Shmem {kd.get('Shmem', 0) / k:+.0f} KiB/ctr")
            cells.append(s)
        L.append(f"| {n} | " + " | ".join(cells) + " |")
    L.append("")
    L.append(f"N = {AGAIN}: once every population was deleted, the N=0 rounds were run again "
             "(a drift check: compare its column with the first; its memory row counts the "
             "population's processes still alive after the deletes).")
    L.append("")
    if b.ps_shape:
        L.append("What `ps` (default table) printed: " + "; ".join(
            f"{rt}: {k} lines, header `{h}`" for rt, (k, h) in b.ps_shape.items())
            + ". A table with a `UID` column is the host's `ps -ef` filtered to the container's "
            "pids, so its cost follows every process on the host, not the container's; a `PID` "
            "table alone is the cgroup's pids.")
        L.append("")
    L.append("## Limits")
    L.append("")
    L += [f"- {x}" for x in limits.notes]
    if b.stopped:
        L.append(f"- growth stopped early: {b.stopped}")
    L.append("")
    L += failures_section(b)
    L.append("Method: hack/bench --scale (hack/bench.d/scale.py, on harness.py's Bench). Times "
             "are wall-clock from spawn to reap of the runtime command, harness overhead "
             "included alike for every column. `kill` is timed alone; the harness then waits "
             "for the init to exit and reaps it (as a shim would) before timing `delete`. The "
             "`list --format json` output is checked to hold the population, `state` to say "
             "running, `ps --format json` to hold "
             f"{PS_PROCS + 1} pids.")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--rootfs", required=True)
    ap.add_argument("--minimal-config", required=True)
    ap.add_argument("--docker-config", required=True)
    ap.add_argument("--runtime", action="append", required=True, help="NAME=PATH")
    ap.add_argument("--hutch-source", help="git describe of the hutch tree that was built")
    ap.add_argument("--scale", required=True, metavar="LIST",
                    type=lambda v: sorted({int(x) for x in v.split(",") if x}),
                    help="the numbers of containers present, e.g. 0,100,1000")
    ap.add_argument("--scale-rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--tp-par", type=int, default=8, help="creates at a time for the population")
    ap.add_argument("--out", help="write the markdown report here too")
    a = ap.parse_args()
    # What Bench reads and this mode has no use for.
    a.runtime_sealed, a.only, a.tp_count = None, None, 0

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log("prctl(PR_SET_CHILD_SUBREAPER) failed")
        return 2
    t0 = time.monotonic()
    b = Scale(a)
    meta = gather_meta(b)
    hi = a.scale[-1]
    limits = Limits(len(b.rts) * (hi + 2 * (PS_PROCS + 1)) + 1000)
    log(f"runtimes: {', '.join(b.rts)}; N = {a.scale}; work dir {a.work}; limits: "
        + "; ".join(limits.notes))
    try:
        for n in a.scale:
            if b.stopped:
                break
            log(f"== N = {n}")
            b.level(n, str(n))
        # Drift check: the machine may have changed while N grew (other work, the kernel's
        # lazy netns cleanup): delete the populations and time N=0 once more.
        b.cleanup_all()
        log(f"== N = 0 again ({AGAIN})")
        b.level(0, AGAIN)
    finally:
        b.cleanup_all()
        b.reap_all()
        b.leftovers()
        limits.restore()
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    meta["wall"] = time.monotonic() - t0
    text = report(b, a, meta, limits)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        log(f"saved {a.out}")
    return 1 if b.failures or b.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
