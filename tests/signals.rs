//! Signals: SIGINT, SIGTERM and SIGHUP stop every component in reverse order and exit with
//! 128 + N; a plugin call that never returns cannot keep vmhost alive past the stop timeout or a
//! second signal, and the message names the component at fault.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use vm_tests::*;

fn hang_device() -> std::path::PathBuf {
    build_out_of_tree("hang", "tests/fixtures/hang-device", None)
}

/// Runs `vmhost run toml` with `args`; once stderr shows `marker`, sends each of `signals` in turn,
/// waiting for `between` (a stderr line) before each after the first. Returns the whole output.
fn signal_when(toml: &Path, args: &[&str], marker: &str, signals: &[&str], between: Option<&str>) -> Output {
    let mut child = Command::new(vmhost())
        .arg("run")
        .args(args)
        .arg(toml)
        .env("RUST_LOG", "info")
        .env_remove("VMHOST_PLUGIN_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmhost");
    let pid = child.id().to_string();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut wait_for = |want: &str, seen: &mut String| loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("vmhost ended before printing {want:?}:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(want) {
            return;
        }
    };
    for (i, sig) in signals.iter().enumerate() {
        wait_for(if i == 0 { marker } else { between.unwrap_or(marker) }, &mut seen);
        let kill = Command::new("kill").args([&format!("-{sig}"), &pid]).status().unwrap();
        assert!(kill.success(), "kill -{sig}");
    }
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut out = wait_with_timeout(child, "vmhost after a signal");
    seen.push_str(&rest.join().unwrap());
    out.stderr = seen.into_bytes();
    out
}

#[test]
fn sigterm_sighup_and_sigint_stop_every_component_and_exit_128_plus_n() {
    for (sig, code) in [("TERM", 143), ("HUP", 129), ("INT", 130)] {
        let dir = scratch(&format!("signals-{sig}"));
        let toml = write_vm_toml(&dir, &guest("bench"), "interp", UART);
        let out = signal_when(&toml, &[], "started component=interp", &[sig], None);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "SIG{sig}: {err}");
        assert!(!stdout(&out).contains("bench: OK"), "SIG{sig}: stopped before the guest finished");
        let engine = err.find("stopped component=interp").expect("engine stopped");
        let uart = err.find("stopped component=uart0").expect("device stopped");
        assert!(engine < uart, "SIG{sig}: engine first, then the device:\n{err}");
    }
}

#[test]
fn a_device_write_that_never_returns_ends_at_the_stop_timeout_naming_the_device() {
    let so = hang_device();
    let dir = scratch("signals-hung-write");
    // The hanging device sits where the guest's console is: its first output byte never returns.
    let dev = format!("\n[[device]]\nid = \"hang0\"\nplugin = \"{}\"\nbase = 0x1000_0000\n", so.display());
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &dev);
    let out =
        signal_when(&toml, &["--stop-timeout", "0.5"], "hang device: a write is blocking", &["INT"], None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    let line = err.lines().find(|l| l.starts_with("vmhost: it has not stopped")).expect(&err);
    assert!(
        line.starts_with(
            "vmhost: it has not stopped 0.5 s after SIGINT; exiting without waiting for device 'hang0' \
             (a guest access at 0x1000000"
        ) && line.ends_with(" has not returned)"),
        "{line}"
    );
}

#[test]
fn a_second_signal_ends_a_stop_that_never_returns() {
    let so = hang_device();
    let dir = scratch("signals-hung-stop");
    let dev = format!(
        "{UART}\n[[device]]\nid = \"hang0\"\nplugin = \"{}\"\nbase = 0x1000_2000\n[device.config]\nhang = \"stop\"\n",
        so.display()
    );
    let toml = write_vm_toml(&dir, &guest("bench"), "interp", &dev);
    // Components stop in reverse: the engine, then hang0, whose stop never returns (the fixture
    // says so on stderr). The default timeout is long; the second signal must not wait for it.
    let out = signal_when(
        &toml,
        &[],
        "started component=interp",
        &["INT", "TERM"],
        Some("hang device: stop is blocking"),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "exit code of the first signal: {err}");
    assert!(
        err.contains(
            "vmhost: a second signal (SIGTERM) came; exiting without waiting for device 'hang0' (its stop has \
             not returned)"
        ),
        "{err}"
    );
}

#[test]
fn a_bad_stop_timeout_is_refused() {
    let out = run(&vmhost(), &["run", "--stop-timeout", "0", "vm.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`0` is not a number of seconds between 0 and 86400"), "{}", stderr(&out));
}
