//! The console and vmhost's own messages: a console that cannot be written stops the VM with a
//! message instead of swallowing the guest's output, and text from vm.toml cannot forge vmhost's
//! lines or drive the terminal.

use std::process::{Command, Stdio};
use vm_tests::*;

fn run_with_stdout(toml: &std::path::Path, stdout: Stdio) -> std::process::Output {
    let child = Command::new(vmhost())
        .args(["run", toml.to_str().unwrap()])
        .env_remove("VMHOST_PLUGIN_PATH")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmhost");
    wait_with_timeout(child, "vmhost with a broken console")
}

#[test]
fn a_console_whose_reader_has_gone_stops_the_vm_with_a_message() {
    let dir = scratch("console-epipe");
    let toml = write_vm_toml(&dir, &guest("bench"), "interp", UART);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = run_with_stdout(&toml, writer.into());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(
            "vmhost: error: I/O error: guest access to device 'uart0' at 0x10000000: serial device 'uart0': the \
             console's reader has gone (Broken pipe (os error 32)); stopping the VM\n"
        ),
        "{err}"
    );
}

#[test]
fn a_console_that_cannot_be_written_stops_the_vm_with_a_message() {
    let dir = scratch("console-enospc");
    let toml = write_vm_toml(&dir, &guest("bench"), "interp", UART);
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let out = run_with_stdout(&toml, full.into());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("serial device 'uart0': writing console output failed (No space left on device"),
        "{err}"
    );
}

#[test]
fn control_characters_from_vm_toml_are_escaped_in_errors() {
    let dir = scratch("console-escape");
    let id = r#"x\u001b[2J\nvmhost: error: forged"#;
    let dev = format!("\n[[device]]\nid = \"{id}\"\nplugin = \"serial\"\nbase = 0x1000_0000\n").repeat(2);
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &dev);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line, no forged one: {err:?}");
    assert!(!err.contains('\u{1b}'), "no raw ESC: {err:?}");
    assert!(err.contains(r"`x\u{1b}[2J\nvmhost: error: forged`"), "{err:?}");
}
