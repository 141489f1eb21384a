//! CRI-level tests: a small CRI client drives containerd's CRI plugin the way kubelet does, with
//! the runtime under test as the pods' runtime handler.
//!
//! `hack/cri/test.sh --runtime PATH` sets the environment up (containerd with CRI in its own
//! network namespace, a local pause and busybox image, CNI loopback + bridge) and runs this
//! target with `HUTCH_CRI_*` pointing at it; without `HUTCH_CRI_SOCKET` every test prints a SKIP
//! line and passes. Each test checks what containerd reports and, from the host, what the runtime
//! really did (namespaces, cgroup files, mounts, leftovers).

#[allow(clippy::all, clippy::pedantic)]
mod runtime_v1;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use runtime_v1 as cri;
use runtime_v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// What hack/cri/test.sh set up.
struct Env {
    socket: PathBuf,
    image: String,
    /// The runtime's `--root` for containerd's k8s.io namespace: `<root>/<container id>`.
    runtime_root: PathBuf,
    cgroup_parent: String,
    /// A private directory of this run for host-side paths (mount sources).
    workdir: PathBuf,
    logdir: PathBuf,
}

fn env(test: &str) -> Option<Env> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let Some(socket) = var("HUTCH_CRI_SOCKET") else {
        eprintln!("SKIP {test}: HUTCH_CRI_SOCKET is not set (hack/cri/test.sh sets up containerd with CRI and runs this)");
        return None;
    };
    let get =
        |k: &str| var(k).unwrap_or_else(|| panic!("{k} is not set (hack/cri/test.sh sets it)"));
    Some(Env {
        socket: PathBuf::from(socket),
        image: get("HUTCH_CRI_IMAGE"),
        runtime_root: PathBuf::from(get("HUTCH_CRI_RUNTIME_ROOT")),
        cgroup_parent: get("HUTCH_CRI_CGROUP_PARENT"),
        workdir: PathBuf::from(get("HUTCH_CRI_WORKDIR")).join(test),
        logdir: PathBuf::from(get("HUTCH_CRI_LOGDIR")).join(test),
    })
}

/// A blocking CRI client for one test; pods it made and did not remove are removed on drop.
struct Cri {
    rt: tokio::runtime::Runtime,
    client: RuntimeServiceClient<Channel>,
    env: Env,
    test: String,
    pods: Vec<String>,
}

const POD: i32 = cri::NamespaceMode::Pod as i32;
const CONTAINER: i32 = cri::NamespaceMode::Container as i32;

impl Cri {
    fn connect(test: &str) -> Option<Cri> {
        let env = env(test)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let socket = env.socket.clone();
        let channel = rt
            .block_on(async {
                // The URI is a placeholder: every connection goes to containerd's unix socket.
                Endpoint::from_static("http://localhost")
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let socket = socket.clone();
                        async move {
                            Ok::<_, std::io::Error>(TokioIo::new(
                                UnixStream::connect(socket).await?,
                            ))
                        }
                    }))
                    .await
            })
            .unwrap_or_else(|e| panic!("connect to containerd at {}: {e}", env.socket.display()));
        fs::create_dir_all(&env.workdir).expect("mkdir workdir");
        fs::create_dir_all(&env.logdir).expect("mkdir logdir");
        Some(Cri {
            rt,
            client: RuntimeServiceClient::new(channel),
            env,
            test: test.to_string(),
            pods: Vec::new(),
        })
    }

    fn version(&mut self) -> cri::VersionResponse {
        let req = cri::VersionRequest {
            version: "v1".into(),
        };
        self.rt
            .block_on(self.client.version(req))
            .expect("Version")
            .into_inner()
    }

    /// A pod config as kubelet sends it (cgroupfs parent under this run's parent cgroup).
    fn pod_config(
        &self,
        name: &str,
        ns: cri::NamespaceOption,
        privileged: bool,
    ) -> cri::PodSandboxConfig {
        let uid = format!("{}-{name}-{}", self.test, std::process::id());
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: name.into(),
                uid: uid.clone(),
                namespace: "hutch-cri".into(),
                attempt: 0,
            }),
            hostname: name.into(),
            log_directory: self.env.logdir.join(&uid).display().to_string(),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/{}", self.env.cgroup_parent, uid),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(ns),
                    privileged,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run_pod(&mut self, config: &cri::PodSandboxConfig) -> String {
        let req = cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: "hutch".into(),
        };
        let id = self
            .rt
            .block_on(self.client.run_pod_sandbox(req))
            .unwrap_or_else(|e| panic!("RunPodSandbox: {e}"))
            .into_inner()
            .pod_sandbox_id;
        self.pods.push(id.clone());
        id
    }

    fn pod_status(&mut self, id: &str) -> (cri::PodSandboxStatus, HashMap<String, String>) {
        let req = cri::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        let r = self
            .rt
            .block_on(self.client.pod_sandbox_status(req))
            .unwrap_or_else(|e| panic!("PodSandboxStatus {id}: {e}"))
            .into_inner();
        (r.status.expect("PodSandboxStatus without status"), r.info)
    }

    fn stop_pod(&mut self, id: &str) {
        let req = cri::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rt
            .block_on(self.client.stop_pod_sandbox(req))
            .unwrap_or_else(|e| panic!("StopPodSandbox {id}: {e}"));
    }

    fn remove_pod(&mut self, id: &str) {
        let req = cri::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rt
            .block_on(self.client.remove_pod_sandbox(req))
            .unwrap_or_else(|e| panic!("RemovePodSandbox {id}: {e}"));
        self.pods.retain(|p| p != id);
    }

    fn container_config(
        &self,
        name: &str,
        script: &str,
        ns: cri::NamespaceOption,
    ) -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: self.env.image.clone(),
                ..Default::default()
            }),
            command: vec!["sh".into(), "-c".into(), script.into()],
            log_path: format!("{name}.log"),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources::default()),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(ns),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// CreateContainer + StartContainer.
    fn start(
        &mut self,
        pod: &str,
        pod_config: &cri::PodSandboxConfig,
        config: cri::ContainerConfig,
    ) -> String {
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let req = cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        };
        let id = self
            .rt
            .block_on(self.client.create_container(req))
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"))
            .into_inner()
            .container_id;
        let req = cri::StartContainerRequest {
            container_id: id.clone(),
        };
        self.rt
            .block_on(self.client.start_container(req))
            .unwrap_or_else(|e| panic!("StartContainer {name} ({id}): {e}"));
        id
    }

    fn status(&mut self, id: &str) -> (cri::ContainerStatus, HashMap<String, String>) {
        let req = cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let r = self
            .rt
            .block_on(self.client.container_status(req))
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e}"))
            .into_inner();
        (r.status.expect("ContainerStatus without status"), r.info)
    }

    /// The container's init pid on the host, from containerd's verbose status.
    fn pid(&mut self, id: &str) -> i32 {
        let (_, info) = self.status(id);
        let info: serde_json::Value =
            serde_json::from_str(info.get("info").map(String::as_str).unwrap_or("{}"))
                .expect("status info JSON");
        let pid = info["pid"].as_i64().unwrap_or(0);
        assert!(
            pid > 0,
            "no pid in the verbose ContainerStatus of {id}: {info}"
        );
        i32::try_from(pid).expect("pid")
    }

    fn exec(&mut self, id: &str, script: &str) -> cri::ExecSyncResponse {
        let req = cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: vec!["sh".into(), "-c".into(), script.into()],
            timeout: 30,
        };
        self.rt
            .block_on(self.client.exec_sync(req))
            .unwrap_or_else(|e| panic!("ExecSync in {id} of {script:?}: {e}"))
            .into_inner()
    }

    /// ExecSync that must succeed; its stdout.
    fn exec_ok(&mut self, id: &str, script: &str) -> String {
        let r = self.exec(id, script);
        let out = String::from_utf8_lossy(&r.stdout).into_owned();
        assert_eq!(
            r.exit_code,
            0,
            "ExecSync {script:?} in {id}: exit {}, stdout {out:?}, stderr {:?}",
            r.exit_code,
            String::from_utf8_lossy(&r.stderr)
        );
        out
    }

    fn stop(&mut self, id: &str, timeout: i64) {
        let req = cri::StopContainerRequest {
            container_id: id.into(),
            timeout,
        };
        self.rt
            .block_on(self.client.stop_container(req))
            .unwrap_or_else(|e| panic!("StopContainer {id}: {e}"));
    }

    fn remove(&mut self, id: &str) {
        let req = cri::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.rt
            .block_on(self.client.remove_container(req))
            .unwrap_or_else(|e| panic!("RemoveContainer {id}: {e}"));
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        self.env.runtime_root.join(id)
    }
}

impl Drop for Cri {
    fn drop(&mut self) {
        // A failed test still removes its pods (RemovePodSandbox removes their containers too), so
        // the driver's leftover check reports only what the runtime itself left behind.
        for id in std::mem::take(&mut self.pods) {
            let stop = cri::StopPodSandboxRequest {
                pod_sandbox_id: id.clone(),
            };
            let _ = self.rt.block_on(self.client.stop_pod_sandbox(stop));
            let rm = cri::RemovePodSandboxRequest { pod_sandbox_id: id };
            let _ = self.rt.block_on(self.client.remove_pod_sandbox(rm));
        }
    }
}

fn ns_opts(network: i32, pid: i32, ipc: i32) -> cri::NamespaceOption {
    cri::NamespaceOption {
        network,
        pid,
        ipc,
        ..Default::default()
    }
}

fn ns_link(pid: i32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .display()
        .to_string()
}

/// The host directory of `pid`'s cgroup in the v1 `controller` hierarchy.
fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/PID/cgroup");
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == controller) {
            return Path::new("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'));
        }
    }
    panic!("pid {pid} has no {controller} cgroup in: {text}");
}

fn read_trim(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

/// Mount points (field 5 of mountinfo) of the test process's mount namespace, i.e. the host's.
fn host_mounts() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sh(script: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .expect("run sh");
    assert!(st.success(), "host command failed ({st}): {script}");
}

/// The path kubelet drives for every pod: RunPodSandbox, Create/StartContainer, ContainerStatus,
/// ExecSync, ContainerStats, UpdateContainerResources, StopContainer (SIGTERM handled and
/// SIGKILL after the timeout), RemoveContainer, StopPodSandbox, RemovePodSandbox; and nothing of
/// the pod left behind.
#[test]
fn pod_lifecycle() {
    let Some(mut c) = Cri::connect("pod_lifecycle") else {
        return;
    };
    // kubelet's defaults: pod network and IPC, a pid namespace per container.
    let ns = ns_opts(POD, CONTAINER, POD);
    let pod_cfg = c.pod_config("lifecycle", ns.clone(), false);
    let pod = c.run_pod(&pod_cfg);
    let (st, _) = c.pod_status(&pod);
    assert_eq!(
        st.state,
        cri::PodSandboxState::SandboxReady as i32,
        "pod state: {st:?}"
    );
    let pod_ip = st
        .network
        .as_ref()
        .map(|n| n.ip.clone())
        .unwrap_or_default();
    assert!(
        pod_ip.starts_with("10.88.77."),
        "pod IP from the CNI bridge: {pod_ip:?}"
    );

    let mut cfg = c.container_config(
        "main",
        "trap 'echo got-TERM; exit 0' TERM; echo started; while :; do sleep 1; done",
        ns.clone(),
    );
    cfg.envs = vec![cri::KeyValue {
        key: "HUTCH_CRI_VAR".into(),
        value: "from-cri".into(),
    }];
    let id = c.start(&pod, &pod_cfg, cfg);
    let (s, _) = c.status(&id);
    assert_eq!(
        s.state,
        cri::ContainerState::ContainerRunning as i32,
        "status: {s:?}"
    );
    let pid = c.pid(&id);

    // The container's stdout reaches the CRI log (through the shim's fifos).
    let log = Path::new(&pod_cfg.log_directory).join("main.log");
    wait_until(
        "'started' in the container log",
        Duration::from_secs(10),
        || fs::read_to_string(&log).is_ok_and(|t| t.contains(" stdout F started")),
    );

    // ExecSync: output, exit code, the container's environment and namespaces.
    let r = c.exec(&id, "echo out-$HUTCH_CRI_VAR; echo err >&2; exit 3");
    assert_eq!(r.exit_code, 3, "ExecSync exit code: {r:?}");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "out-from-cri\n");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "err\n");
    let inside = c.exec_ok(
        &id,
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/net; ip -4 addr show eth0",
    );
    assert!(
        inside.contains(&ns_link(pid, "pid")),
        "exec is not in the container's pid ns: {inside}"
    );
    assert!(
        inside.contains(&ns_link(pid, "net")),
        "exec is not in the pod's net ns: {inside}"
    );
    assert!(
        inside.contains(&format!("inet {pod_ip}/")),
        "eth0 in the container: {inside}"
    );
    assert_ne!(
        ns_link(pid, "net"),
        ns_link(std::process::id() as i32, "net")
    );
    assert!(
        !Path::new("/sys/class/net/hutchcri0").exists(),
        "the CNI bridge is in the host's network namespace"
    );

    // ContainerStats: the shim reads the cgroup the runtime made.
    let req = cri::ContainerStatsRequest {
        container_id: id.clone(),
    };
    let stats =
        c.rt.block_on(c.client.container_stats(req))
            .expect("ContainerStats")
            .into_inner()
            .stats
            .expect("ContainerStats without stats");
    let ws = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value)
        .unwrap_or(0);
    let cpu = stats
        .cpu
        .and_then(|m| m.usage_core_nano_seconds)
        .map(|v| v.value)
        .unwrap_or(0);
    assert!(
        ws > 0 && cpu > 0,
        "ContainerStats: working set {ws}, cpu {cpu}"
    );

    // UpdateContainerResources goes through the runtime's `update`: check it on the host and inside.
    let memdir = cgroup_dir(pid, "memory");
    let cpudir = cgroup_dir(pid, "cpu");
    assert!(
        memdir.to_string_lossy().contains(&c.env.cgroup_parent),
        "cgroup {}",
        memdir.display()
    );
    let req = cri::UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 96 << 20,
            cpu_shares: 512,
            ..Default::default()
        }),
        ..Default::default()
    };
    c.rt.block_on(c.client.update_container_resources(req))
        .unwrap_or_else(|e| panic!("UpdateContainerResources: {e}"));
    assert_eq!(
        read_trim(&memdir.join("memory.limit_in_bytes")),
        (96u64 << 20).to_string()
    );
    assert_eq!(read_trim(&cpudir.join("cpu.shares")), "512");
    let inside = c.exec_ok(&id, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
    assert_eq!(
        inside.trim(),
        (96u64 << 20).to_string(),
        "memory limit inside the container"
    );

    // StopContainer: the SIGTERM handler's exit, well before the timeout.
    let t0 = Instant::now();
    c.stop(&id, 20);
    let took = t0.elapsed();
    let (s, _) = c.status(&id);
    assert_eq!(
        s.state,
        cri::ContainerState::ContainerExited as i32,
        "after stop: {s:?}"
    );
    assert_eq!(s.exit_code, 0, "exit code after a handled SIGTERM: {s:?}");
    assert!(
        took < Duration::from_secs(10),
        "StopContainer took {took:?}"
    );
    wait_until("got-TERM in the log", Duration::from_secs(5), || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains(" stdout F got-TERM"))
    });
    c.remove(&id);
    assert!(
        !c.state_dir(&id).exists(),
        "runtime state {} left after RemoveContainer",
        c.state_dir(&id).display()
    );
    assert!(
        !memdir.exists(),
        "cgroup {} left after RemoveContainer",
        memdir.display()
    );

    // A container that ignores SIGTERM is killed after the timeout: 137.
    let cfg = c.container_config("stubborn", "trap '' TERM; while :; do sleep 1; done", ns);
    let id = c.start(&pod, &pod_cfg, cfg);
    let t0 = Instant::now();
    c.stop(&id, 1);
    let (s, _) = c.status(&id);
    assert_eq!(
        s.state,
        cri::ContainerState::ContainerExited as i32,
        "after stop: {s:?}"
    );
    assert_eq!(s.exit_code, 137, "exit code after SIGKILL: {s:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "StopContainer took {:?}",
        t0.elapsed()
    );
    c.remove(&id);

    let (_, info) = c.pod_status(&pod);
    let info: serde_json::Value =
        serde_json::from_str(info.get("info").map(String::as_str).unwrap_or("{}")).expect("info");
    let sandbox_pid = i32::try_from(info["pid"].as_i64().unwrap_or(0)).expect("pid");
    assert!(sandbox_pid > 0, "no sandbox pid in {info}");
    let sandbox_cg = cgroup_dir(sandbox_pid, "memory");
    c.stop_pod(&pod);
    let (st, _) = c.pod_status(&pod);
    assert_eq!(
        st.state,
        cri::PodSandboxState::SandboxNotready as i32,
        "after StopPodSandbox: {st:?}"
    );
    c.remove_pod(&pod);
    assert!(
        !c.state_dir(&pod).exists(),
        "runtime state of the sandbox left: {}",
        c.state_dir(&pod).display()
    );
    assert!(
        !sandbox_cg.exists(),
        "sandbox cgroup left: {}",
        sandbox_cg.display()
    );
    assert!(
        !Path::new(&format!("/proc/{sandbox_pid}")).exists(),
        "pause process {sandbox_pid} still alive"
    );
}

/// Two containers in a pod that shares pid, ipc and network namespaces: the same namespaces seen
/// from the host and from inside, one sees the other's processes, pause is pid 1.
#[test]
fn shared_namespaces_pod() {
    let Some(mut c) = Cri::connect("shared_namespaces_pod") else {
        return;
    };
    let ns = ns_opts(POD, POD, POD);
    let pod_cfg = c.pod_config("shared", ns.clone(), false);
    let pod = c.run_pod(&pod_cfg);
    // a leaves a child behind when its main process goes: with a shared pid namespace the shim
    // then runs the runtime's `kill --all` on the stopped container to end it.
    let a = c.start(
        &pod,
        &pod_cfg,
        c.container_config(
            "a",
            "echo from-a >/dev/shm/a; sleep 3005 & exec sleep 3001",
            ns.clone(),
        ),
    );
    let b = c.start(
        &pod,
        &pod_cfg,
        c.container_config("b", "exec sleep 3002", ns),
    );
    let (pa, pb) = (c.pid(&a), c.pid(&b));
    let me = std::process::id() as i32;
    for n in ["pid", "ipc", "net", "uts"] {
        assert_eq!(
            ns_link(pa, n),
            ns_link(pb, n),
            "{n} namespace of the two containers"
        );
        assert_ne!(
            ns_link(pa, n),
            ns_link(me, n),
            "{n} namespace is the host's"
        );
    }
    assert_ne!(
        ns_link(pa, "mnt"),
        ns_link(pb, "mnt"),
        "the containers share a mount namespace"
    );

    wait_until("a's /dev/shm/a", Duration::from_secs(10), || {
        c.exec(&b, "cat /dev/shm/a").stdout == b"from-a\n"
    });
    let ps = c.exec_ok(&b, "ps -o pid,args");
    assert!(
        ps.contains("sleep 3001") && ps.contains("sleep 3005"),
        "b does not see a's processes: {ps}"
    );
    assert!(
        ps.contains("sleep 3002"),
        "b does not see its own process: {ps}"
    );
    let init = c.exec_ok(&a, "cat /proc/1/cmdline");
    assert_eq!(init.trim_end_matches('\0'), "/pause", "pid 1 of the pod");
    let links = "for n in pid ipc net; do readlink /proc/self/ns/$n; done";
    let (ns_inside_a, ns_inside_b) = (c.exec_ok(&a, links), c.exec_ok(&b, links));
    assert_eq!(ns_inside_a, ns_inside_b, "namespaces seen from inside");
    // b can signal a's main process: a exits, b goes on, and a's orphan goes with a (the shim's
    // `kill --all` of the exited container), not at the end of the pod.
    c.exec_ok(
        &b,
        "for p in $(pidof sleep); do grep -q 3001 /proc/$p/cmdline && kill $p; done; true",
    );
    wait_until("a to exit", Duration::from_secs(10), || {
        c.status(&a).0.state == cri::ContainerState::ContainerExited as i32
    });
    assert_eq!(
        c.status(&b).0.state,
        cri::ContainerState::ContainerRunning as i32
    );
    let t0 = Instant::now();
    loop {
        let ps = c.exec_ok(&b, "ps -o args");
        if !ps.contains("sleep 3005") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "a's child outlived a by 10 s in the shared pid namespace (kill --all of the exited container): {ps}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    c.stop_pod(&pod);
    c.remove_pod(&pod);
    for id in [&a, &b, &pod] {
        assert!(
            !c.state_dir(id).exists(),
            "runtime state left: {}",
            c.state_dir(id).display()
        );
    }
}

/// Kubernetes' Bidirectional and HostToContainer mount propagation: host path on a shared mount
/// (the test's own private directory), a mount made inside the container appears on the host
/// (Bidirectional only), one made on the host appears inside (both).
#[test]
fn mount_propagation() {
    let Some(mut c) = Cri::connect("mount_propagation") else {
        return;
    };
    let bidi = c.env.workdir.join("bidi");
    let slave = c.env.workdir.join("h2c");
    fs::create_dir_all(&bidi).expect("mkdir");
    fs::create_dir_all(&slave).expect("mkdir");
    // CRI refuses Bidirectional unless the host path is on a shared mount, HostToContainer unless
    // it is shared or slave: make the work dir its own shared mount.
    let wd = c.env.workdir.display().to_string();
    sh(&format!(
        "mount --bind '{wd}' '{wd}' && mount --make-shared '{wd}'"
    ));
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").args(["-R", "-l", &self.0]).status();
        }
    }
    let _unmount = Unmount(wd.clone());

    let ns = ns_opts(POD, CONTAINER, POD);
    let pod_cfg = c.pod_config("propagation", ns.clone(), true);
    let pod = c.run_pod(&pod_cfg);
    let mut cfg = c.container_config("main", "exec sleep 3003", ns);
    cfg.mounts = vec![
        cri::Mount {
            container_path: "/mnt/bidi".into(),
            host_path: bidi.display().to_string(),
            propagation: cri::MountPropagation::PropagationBidirectional as i32,
            ..Default::default()
        },
        cri::Mount {
            container_path: "/mnt/h2c".into(),
            host_path: slave.display().to_string(),
            propagation: cri::MountPropagation::PropagationHostToContainer as i32,
            ..Default::default()
        },
    ];
    if let Some(sc) = cfg.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.privileged = true;
    }
    let id = c.start(&pod, &pod_cfg, cfg);

    // Container to host.
    c.exec_ok(
        &id,
        "for d in bidi h2c; do mkdir -p /mnt/$d/in && mount -t tmpfs -o size=1m cri-$d /mnt/$d/in && echo x-$d >/mnt/$d/in/f || exit 1; done",
    );
    let mounts = host_mounts();
    let bidi_in = bidi.join("in");
    assert!(
        mounts.iter().any(|m| Path::new(m) == bidi_in),
        "a mount made in the container under a Bidirectional mount is not on the host at {}",
        bidi_in.display()
    );
    assert_eq!(read_trim(&bidi_in.join("f")), "x-bidi");
    assert!(
        !mounts.iter().any(|m| Path::new(m) == slave.join("in")),
        "a mount made in the container under a HostToContainer mount reached the host"
    );

    // Host to container.
    for d in [&bidi, &slave] {
        let p = d.join("out").display().to_string();
        sh(&format!(
            "mkdir -p '{p}' && mount -t tmpfs -o size=1m cri-host '{p}' && echo from-host >'{p}/f'"
        ));
    }
    let seen = c.exec_ok(&id, "cat /mnt/bidi/out/f /mnt/h2c/out/f");
    assert_eq!(
        seen, "from-host\nfrom-host\n",
        "host mounts seen in the container"
    );

    // An unmount inside propagates out too (Bidirectional).
    c.exec_ok(&id, "umount /mnt/bidi/in");
    assert!(
        !host_mounts().iter().any(|m| Path::new(m) == bidi_in),
        "unmount in the container did not reach the host"
    );

    c.stop_pod(&pod);
    c.remove_pod(&pod);
    assert!(
        !c.state_dir(&id).exists(),
        "runtime state left: {}",
        c.state_dir(&id).display()
    );
}

/// `Uid:`/`Gid:` of /proc/PID/status: the real, effective, saved and fs ids as the host sees them.
fn host_ids(pid: i32, key: &str) -> Vec<u32> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| {
            v.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// A user-namespaced pod (KEP-127, PodSandboxConfig's userns_options, mode POD with one uid and
/// one gid range, as kubelet sends for `hostUsers: false`). containerd supports it from 1.7 on
/// (hack/cri/test.sh fetches Debian trixie's 1.7); 1.6 ignores the field (by design, for
/// compatibility), so there the test shows that and skips, naming what blocks it.
#[test]
fn userns_pod() {
    let Some(mut c) = Cri::connect("userns_pod") else {
        return;
    };
    let v = c.version();
    let ver = v.runtime_version.trim_start_matches('v').to_string();
    let mut parts = ver
        .split(|ch: char| !ch.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let supported = (major, minor) >= (1, 7);

    const HOST_ID: u32 = 200_000;
    let map = cri::IdMapping {
        host_id: HOST_ID,
        container_id: 0,
        length: 65536,
    };
    let mut ns = ns_opts(POD, CONTAINER, POD);
    ns.userns_options = Some(cri::UserNamespace {
        mode: POD,
        uids: vec![map],
        gids: vec![map],
    });
    // A volume the pod writes to (as an emptyDir is: a host directory, not id-mapped in 1.7):
    // what the container's root creates there must belong to the mapped host uid.
    let vol = c.env.workdir.join("vol");
    fs::create_dir_all(&vol).expect("mkdir vol");
    sh(&format!("chmod 0777 '{}'", vol.display()));
    let pod_cfg = c.pod_config("userns", ns.clone(), false);
    let pod = c.run_pod(&pod_cfg);
    let mut cfg = c.container_config("main", "exec sleep 3004", ns);
    cfg.mounts = vec![cri::Mount {
        container_path: "/mnt/vol".into(),
        host_path: vol.display().to_string(),
        ..Default::default()
    }];
    let id = c.start(&pod, &pod_cfg, cfg);
    let inside = c.exec_ok(
        &id,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; \
         echo x >/mnt/vol/f && echo y >/root-f && stat -c '%u:%g' /mnt/vol/f /root-f",
    );
    let pid = c.pid(&id);
    let (_, info) = c.pod_status(&pod);
    let info: serde_json::Value =
        serde_json::from_str(info.get("info").map(String::as_str).unwrap_or("{}")).expect("info");
    let sandbox_pid = i32::try_from(info["pid"].as_i64().unwrap_or(0)).expect("pid");
    assert!(sandbox_pid > 0, "no sandbox pid in {info}");

    let host_user_ns = ns_link(std::process::id() as i32, "user");
    let (user_ns, sandbox_user_ns) = (ns_link(pid, "user"), ns_link(sandbox_pid, "user"));
    let (uids, gids) = (host_ids(pid, "Uid:"), host_ids(pid, "Gid:"));
    // The files as the host sees them: the volume's directly, the rootfs's through the
    // container's root (its writable layer).
    let owner = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
        (m.uid(), m.gid())
    };
    let vol_owner = owner(&vol.join("f"));
    let root_owner = owner(Path::new(&format!("/proc/{pid}/root/root-f")));
    let rootfs_owner = owner(Path::new(&format!("/proc/{pid}/root/bin")));
    c.stop_pod(&pod);
    c.remove_pod(&pod);

    let lines: Vec<Vec<&str>> = inside
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    if !supported {
        assert_eq!(
            (lines.first().map(Vec::as_slice), user_ns == host_user_ns),
            (Some(["0", "0", "4294967295"].as_slice()), true),
            "containerd {ver} was expected to ignore userns_options"
        );
        let why = std::env::var("HUTCH_CRI_USERNS_SKIP").unwrap_or_default();
        eprintln!(
            "SKIP userns_pod: blocked by the engine: containerd {ver} ({}) ignores PodSandboxConfig's userns_options \
             (CRI user namespaces came in containerd 1.7){}; the pod ran in the host's user namespace (uid_map {:?})",
            v.runtime_name,
            if why.is_empty() { String::new() } else { format!("; {why}") },
            inside.lines().next().unwrap_or("").trim()
        );
        return;
    }
    let want_map = ["0", "200000", "65536"];
    let want: Vec<&[&str]> = vec![&want_map, &want_map, &["0"], &["0"], &["0:0"], &["0:0"]];
    assert_eq!(
        lines.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        want,
        "inside the user-namespaced pod: uid_map, gid_map, id -u, id -g, owners of a file in a volume and in the rootfs"
    );
    assert_ne!(
        user_ns, host_user_ns,
        "the container is in the host's user namespace"
    );
    assert_eq!(
        user_ns, sandbox_user_ns,
        "the container is not in its pod's user namespace"
    );
    assert_eq!(
        (uids, gids),
        (vec![HOST_ID; 4], vec![HOST_ID; 4]),
        "host uids and gids (real, effective, saved, fs) of the container's process {pid}"
    );
    assert_eq!(
        vol_owner,
        (HOST_ID, HOST_ID),
        "host owner of the file the container's root made in its volume"
    );
    assert_eq!(
        root_owner,
        (HOST_ID, HOST_ID),
        "host owner of the file the container's root made in its rootfs"
    );
    assert_eq!(
        rootfs_owner,
        (HOST_ID, HOST_ID),
        "host owner of the image's /bin in the pod's rootfs (containerd remaps the snapshot)"
    );
}
