//! Shared helpers for the integration tests: building the binaries and plugins they run, building
//! plugins out of tree (optionally against a doctored copy of plugin-api), and running `vmhost`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The cargo target directory the tests build in.
pub fn target_root() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// The cargo profile these tests were built with, so nested builds reuse the same artifacts.
fn profile() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run_cargo(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run cargo for {what}: {e}"));
    assert!(out.status.success(), "building {what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// Builds `vmhost` and the in-tree plugin libraries once; returns the directory holding them.
pub fn build_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let mut cmd = cargo();
        cmd.current_dir(root()).args([
            "build",
            "-p",
            "vm-host",
            "-p",
            "vm-interp-so",
            "-p",
            "vm-serial-so",
            "-p",
            "vm-virtio-blk-so",
        ]);
        if profile() == "release" {
            cmd.arg("--release");
        }
        run_cargo(cmd, "vmhost and the in-tree plugins");
        target_root().join(profile())
    })
}

/// The `vmhost` binary next to the in-tree `.so` plugins.
pub fn vmhost() -> PathBuf {
    build_dir().join("vmhost")
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = target_root().join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A copy of `vmhost` alone in a directory, so only its built-in plugins are found.
pub fn lone_vmhost(name: &str) -> PathBuf {
    let dir = scratch(name);
    let exe = dir.join("vmhost");
    std::fs::copy(vmhost(), &exe).expect("copy vmhost");
    exe
}

/// A guest ELF from guests/bin.
pub fn guest(name: &str) -> PathBuf {
    root().join("guests/bin").join(format!("{name}.elf"))
}

/// Longest a single vmhost run in a test may take; a hang fails the test instead of stalling CI.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `exe` with `args`, with no plugin path from the environment unless `env` sets one. Kills it
/// and fails the test if it outlives [`RUN_TIMEOUT`].
pub fn run(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.args(args).env_remove("VMHOST_PLUGIN_PATH").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    wait_with_timeout(child, &format!("{} {}", exe.display(), args.join(" ")))
}

/// Awaits `f`, failing the test if it takes longer than [`RUN_TIMEOUT`].
pub async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(RUN_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| panic!("did not finish within {RUN_TIMEOUT:?}"))
}

/// Waits for `child`'s output; kills it and panics after [`RUN_TIMEOUT`].
pub fn wait_with_timeout(child: Child, what: &str) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{what} did not finish within {RUN_TIMEOUT:?}");
        }
    }
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A vm.toml in `dir` booting `kernel` on `engine`, with `extra` appended (device entries).
pub fn write_vm_toml(dir: &Path, kernel: &Path, engine: &str, extra: &str) -> PathBuf {
    let text = format!(
        "[machine]\nmemory = \"64M\"\n\n[boot]\nkernel = \"{}\"\n\n[engine]\nplugin = \"{engine}\"\n{extra}",
        kernel.display()
    );
    let path = dir.join("vm.toml");
    std::fs::write(&path, text).expect("write vm.toml");
    path
}

/// The usual UART entry.
pub const UART: &str = "\n[[device]]\nid = \"uart0\"\nplugin = \"serial\"\nbase = 0x1000_0000\nirq = 10\n";

/// How to doctor the copy of plugin-api a fixture is built against.
pub type ApiPatch = fn(&Path);

/// Builds the plugin crate at `crate_dir` (relative to the workspace root) out of tree, against a
/// copy of plugin-api changed by `patch`; returns the `.so`. Builds are cached per `key`.
pub fn build_out_of_tree(key: &str, crate_dir: &str, patch: Option<ApiPatch>) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, p)) = built.iter().find(|(k, _)| k == key) {
        return p.clone();
    }
    // Layout: <src>/plugin-api and <src>/<a>/<b>/<crate>, so the crate's relative path to
    // plugin-api still resolves.
    let src = target_root().join("fixtures/src").join(key);
    let _ = std::fs::remove_dir_all(&src);
    copy_dir(&root().join("plugin-api"), &src.join("plugin-api"));
    if let Some(p) = patch {
        p(&src.join("plugin-api"));
    }
    let crate_copy = src.join(crate_dir);
    copy_dir(&root().join(crate_dir), &crate_copy);
    let lock = root().join("Cargo.lock");
    std::fs::copy(&lock, crate_copy.join("Cargo.lock")).expect("copy Cargo.lock");
    let so = build_plugin_crate(&crate_copy, &target_root().join("fixtures/out").join(key));
    built.push((key.to_string(), so.clone()));
    so
}

/// Copies the directory tree `from` to `to`, leaving out `target` and `Cargo.lock`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("dir entry");
        let name = e.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy file");
        }
    }
}

/// Replaces `from` with `to` in `file`, asserting it was there.
pub fn patch_file(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read file to patch");
    assert!(text.contains(from), "{} does not contain {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).expect("write patched file");
}

/// `tool` on `$PATH`, if installed.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(tool)).find(|p| p.exists())
}

/// `qemu-system-riscv64`, or `None` with a printed reason (the tests that compare with it skip).
pub fn qemu() -> Option<PathBuf> {
    let q = which("qemu-system-riscv64");
    if q.is_none() {
        eprintln!("skipped: qemu-system-riscv64 is not installed (scripts/install-deps.sh --with-qemu)");
    }
    q
}

/// Builds the plugin crate at `dir` in the fixtures' shared target directory (dependencies are
/// compiled once for all of them) and copies its library into `out`, a directory of its own (a
/// library path is loaded once per process); returns the copy. The crate's `[lib] name` must
/// start with `vmhost_`.
pub fn build_plugin_crate(dir: &Path, out: &Path) -> PathBuf {
    let target = target_root().join("fixtures/target");
    let mut cmd = cargo();
    cmd.current_dir(dir).args(["build", "--release", "--target-dir"]).arg(&target);
    run_cargo(cmd, &format!("plugin crate {}", dir.display()));
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("read the plugin's manifest");
    let lib = manifest
        .lines()
        .find_map(|l| {
            l.trim().strip_prefix("name = \"vmhost_").map(|r| r.split('"').next().unwrap_or("").to_string())
        })
        .expect("the plugin's [lib] name starts with vmhost_");
    let file = format!("libvmhost_{lib}.so");
    std::fs::create_dir_all(out).expect("create the plugin's output dir");
    std::fs::copy(target.join("release").join(&file), out.join(&file)).expect("copy the plugin library");
    out.join(file)
}

/// Assembles `source` (GNU as syntax, `_start` first) with `-march=march` into `dir/name.elf`,
/// linked so that `_start` is at the start of RAM, where QEMU's `-bios none` starts whatever the
/// ELF's entry. Panics with the assembler's message if it fails.
pub fn assemble(gcc: &Path, dir: &Path, name: &str, source: &str, march: &str) -> PathBuf {
    let src = dir.join(format!("{name}.S"));
    let elf = dir.join(format!("{name}.elf"));
    std::fs::write(&src, source).unwrap();
    let script = dir.join("link.ld");
    std::fs::write(
        &script,
        "ENTRY(_start)\nSECTIONS {\n . = 0x80000000;\n .text : { *(.text) }\n .bss : { *(.bss) }\n}\n",
    )
    .unwrap();
    let out = Command::new(gcc)
        .arg(format!("-march={march}"))
        .args(["-mabi=lp64", "-mcmodel=medany", "-nostdlib", "-nostartfiles", "-static"])
        .arg("-T")
        .arg(&script)
        .args(["-Wl,--no-warn-rwx-segments", "-o"])
        .arg(&elf)
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "assembling {name}: {}", String::from_utf8_lossy(&out.stderr));
    elf
}

/// A GNU as macro for test programs: `print_hex` writes x8 as 16 hex digits and a newline to the
/// 16550A whose base is in x6, waiting for THRE before each byte; it clobbers x9..x12. Put it
/// before the code that uses it.
pub const PRINT_HEX: &str = r#"
    .macro print_hex
    li x9, 60
4:  srl x10, x8, x9
    andi x10, x10, 15
    li x11, 10
    blt x10, x11, 1f
    addi x10, x10, 39
1:  addi x10, x10, 48
2:  lbu x12, 5(x6)
    andi x12, x12, 0x20
    beqz x12, 2b
    sb x10, 0(x6)
    addi x9, x9, -4
    bgez x9, 4b
3:  lbu x12, 5(x6)
    andi x12, x12, 0x20
    beqz x12, 3b
    li x10, 10
    sb x10, 0(x6)
    .endm
"#;

/// A guest console driven like a person at a terminal: wait for text, then type. Works for any
/// VM whose console is its stdin and stdout (`vmhost run`, `qemu-system-riscv64 -nographic`).
pub struct Console {
    /// The VM; stdin and stdout belong to the console, stderr is left piped for the caller.
    /// Killed when the console is dropped (a failed test leaves no VM behind), unless taken with
    /// [`Console::into_child`].
    child: Option<Child>,
    stdin: std::process::ChildStdin,
    bytes: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
    /// Where in `seen` the next wait starts looking.
    from: usize,
    deadline: std::time::Instant,
    /// The VM's stderr, once [`Console::watch_stderr`] took it.
    errors: Option<std::sync::mpsc::Receiver<Vec<u8>>>,
    errors_seen: String,
}

/// Sends what `from` gives, in chunks, until it ends. Reads on when no one listens any more, so
/// the VM never meets a closed console while it finishes.
fn forward(mut from: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            let _ = tx.send(buf[..n].to_vec());
        }
    });
    rx
}

impl Console {
    /// Starts `cmd` with piped stdin, stdout and stderr; fails the test if it cannot start.
    pub fn start(mut cmd: Command) -> Console {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let bytes = forward(child.stdout.take().expect("piped stdout"));
        let deadline = std::time::Instant::now() + RUN_TIMEOUT;
        Console {
            child: Some(child),
            stdin,
            bytes,
            seen: String::new(),
            from: 0,
            deadline,
            errors: None,
            errors_seen: String::new(),
        }
    }

    /// The VM's process.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the VM is there until into_child")
    }

    /// Hands the VM's process over (to wait for its exit), so dropping the console leaves it.
    pub fn into_child(mut self) -> Child {
        self.child.take().expect("the VM is there until into_child")
    }

    /// Reads the VM's stderr from now on, for [`Console::wait_for_stderr`] (it is then no longer
    /// in the child's output).
    pub fn watch_stderr(&mut self) {
        self.errors = Some(forward(self.child().stderr.take().expect("piped stderr")));
    }

    /// Waits until stderr has printed `text` `times` times since [`Console::watch_stderr`];
    /// returns all of stderr so far. Fails the test after [`RUN_TIMEOUT`] or if stderr closes first.
    pub fn wait_for_stderr(&mut self, text: &str, times: usize) -> String {
        let errors = self.errors.as_ref().expect("watch_stderr first");
        while self.errors_seen.matches(text).count() < times {
            let left = self.deadline.saturating_duration_since(std::time::Instant::now());
            match errors.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(b) => self.errors_seen.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => {
                    let _ = self.child().kill();
                    panic!("no {text:?} on stderr; stderr:\n{}\nconsole:\n{}", self.errors_seen, self.seen)
                }
            }
        }
        self.errors_seen.clone()
    }

    /// `vmhost run toml` with this crate's vmhost and its plugins only.
    pub fn vmhost(toml: &Path) -> Console {
        let mut cmd = Command::new(vmhost());
        cmd.arg("run").arg(toml).env_remove("VMHOST_PLUGIN_PATH").env_remove("RUST_LOG");
        Console::start(cmd)
    }

    /// Waits until `text` appears after the previous match; returns what came before it. Kills
    /// the VM and fails the test after [`RUN_TIMEOUT`] or if the VM ends first.
    pub fn wait_for(&mut self, text: &str) -> String {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            if let Some(at) = self.seen[self.from..].find(text) {
                let before = self.seen[self.from..self.from + at].to_string();
                self.from += at + text.len();
                return before;
            }
            let left = self.deadline.saturating_duration_since(std::time::Instant::now());
            match self.bytes.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(b) => self.seen.push_str(&String::from_utf8_lossy(&b).replace('\r', "")),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child().kill();
                    panic!("no {text:?} within {RUN_TIMEOUT:?}; console so far:\n{}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child().kill();
                    let err = self.child().stderr.take().map(|mut e| {
                        let mut s = String::new();
                        let _ = std::io::Read::read_to_string(&mut e, &mut s);
                        s
                    });
                    panic!(
                        "the VM ended before {text:?}; console:\n{}\nstderr:\n{}",
                        self.seen,
                        err.unwrap_or_default()
                    )
                }
            }
        }
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        use std::io::Write;
        self.stdin.write_all(format!("{line}\n").as_bytes()).expect("type into the console");
        self.stdin.flush().expect("flush the console input");
    }

    /// Types `command` at a shell whose prompt is `prompt` and returns its output (up to the next
    /// prompt), without the echoed command line.
    pub fn command(&mut self, command: &str, prompt: &str) -> String {
        self.type_line(command);
        self.wait_for(&format!("{command}\n"));
        self.wait_for(prompt)
    }

    /// Everything the console has printed so far, without `\r`.
    pub fn seen(&self) -> &str {
        &self.seen
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
