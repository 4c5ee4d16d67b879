//! Each kind of bad vm.toml is refused with a message naming the file, line, column and key.

use std::path::Path;
use vm_tests::*;

/// Runs vmhost on `text` (written as vm.toml in a scratch dir); returns (exit code, stderr, path).
fn refuse(name: &str, text: &str) -> (Option<i32>, String, String) {
    let dir = scratch(name);
    let path = dir.join("vm.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::copy(guest("hello"), dir.join("hello.elf")).unwrap();
    let out = run(&vmhost(), &["run", path.to_str().unwrap()], &[]);
    assert!(stdout(&out).is_empty(), "the guest must not run: {}", stdout(&out));
    (out.status.code(), stderr(&out), path.display().to_string())
}

const HEAD: &str =
    "[machine]\nmemory = \"64M\"\n[boot]\nkernel = \"hello.elf\"\n[engine]\nplugin = \"interp\"\n";

fn device(id: &str, plugin: &str, base: &str) -> String {
    format!("[[device]]\nid = \"{id}\"\nplugin = \"{plugin}\"\nbase = {base}\n")
}

#[test]
fn unknown_key() {
    let (code, err, file) =
        refuse("cfg-unknown-key", &HEAD.replace("memory = \"64M\"\n", "memory = \"64M\"\nmemroy = 1\n"));
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with(&format!(
            "vmhost: error: {file}:3:1: unknown key `memroy`, expected `memory` or `slice`"
        )),
        "{err}"
    );
}

#[test]
fn missing_section() {
    let (code, err, file) =
        refuse("cfg-missing", "[machine]\nmemory = \"64M\"\n[engine]\nplugin = \"interp\"\n");
    assert_eq!(code, Some(1));
    assert!(err.starts_with(&format!("vmhost: error: {file}:1:1: missing key `boot`")), "{err}");
}

#[test]
fn missing_kernel_file() {
    let (code, err, file) = refuse("cfg-no-kernel", &HEAD.replace("hello.elf", "nope.elf"));
    assert_eq!(code, Some(1));
    let dir = Path::new(&file).parent().unwrap().display().to_string();
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:4:10: key `boot.kernel`: cannot read {dir}/nope.elf: No such file or directory (os error 2)"
        )
    );
}

#[test]
fn zero_memory() {
    let (_, err, file) = refuse("cfg-zero-mem", &HEAD.replace("\"64M\"", "0"));
    assert_eq!(
        err.trim_end(),
        format!("vmhost: error: {file}:2:10: key `machine.memory`: must be greater than 0")
    );
}

#[test]
fn memory_not_page_aligned() {
    let (_, err, file) = refuse("cfg-odd-mem", &HEAD.replace("\"64M\"", "\"100001K\""));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:2:10: key `machine.memory`: 102401024 bytes is not a multiple of the 4 KiB page size"
        )
    );
}

#[test]
fn memory_of_the_wrong_type() {
    let (_, err, file) = refuse("cfg-bool-mem", &HEAD.replace("\"64M\"", "true"));
    assert!(
        err.starts_with(&format!(
            "vmhost: error: {file}:2:10: key `machine.memory`: found a boolean; expected a size"
        )),
        "{err}"
    );
}

#[test]
fn overlapping_io_regions() {
    let text = format!(
        "{HEAD}{}{}",
        device("uart0", "serial", "0x10000000"),
        device("uart1", "serial", "0x10000000")
    );
    let (code, err, file) = refuse("cfg-overlap", &text);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:14:8: key `device.base`: device 'uart1' overlaps 'uart0' at 0x10000000..0x10000100"
        )
    );
}

#[test]
fn base_not_aligned_to_its_region() {
    let (_, err, file) = refuse("cfg-align", &format!("{HEAD}{}", device("uart0", "serial", "0x10000010")));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:10:8: key `device.base`: 0x10000010 is not aligned to the 0x100-byte register \
             region of device 'uart0' (serial); use a multiple of 0x100"
        )
    );
}

#[test]
fn device_over_ram() {
    let (_, err, file) =
        refuse("cfg-over-ram", &format!("{HEAD}{}", device("uart0", "serial", "0x80000000")));
    assert_eq!(
        err.trim_end(),
        format!("vmhost: error: {file}:10:8: key `device.base`: device 'uart0' at 0x80000000 overlaps RAM")
    );
}

#[test]
fn unknown_plugin() {
    let (code, err, file) =
        refuse("cfg-unknown-plugin", &format!("{HEAD}{}", device("disk0", "nosuch", "0x10001000")));
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with(&format!(
            "vmhost: error: {file}:9:10: key `device.plugin` of device 'disk0': no plugin named 'nosuch': not built in, \
             and no libvmhost_nosuch.so in "
        )),
        "{err}"
    );
}

#[test]
fn engine_that_is_a_device() {
    let (_, err, file) = refuse("cfg-kind", &HEAD.replace("plugin = \"interp\"", "plugin = \"serial\""));
    assert!(
        err.starts_with(&format!("vmhost: error: {file}:6:10: key `engine.plugin`: plugin 'serial'")),
        "{err}"
    );
    assert!(err.contains("is a Device plugin, but Engine is needed here"), "{err}");
}

#[test]
fn duplicate_device_id() {
    let text = format!(
        "{HEAD}{}{}",
        device("uart0", "serial", "0x10000000"),
        device("uart0", "serial", "0x10001000")
    );
    let (_, err, file) = refuse("cfg-dup", &text);
    assert_eq!(
        err.trim_end(),
        format!("vmhost: error: {file}:12:6: key `device.id`: duplicate device id `uart0`")
    );
}

#[test]
fn bad_plugin_config_is_reported_by_the_plugin() {
    let text = format!("{HEAD}{}[device.config]\nspeed = 9600\n", device("uart0", "serial", "0x10000000"));
    let (_, err, file) = refuse("cfg-plugin-config", &text);
    assert!(
        err.starts_with(&format!(
            "vmhost: error: {file}: device 'uart0' (serial) refused its configuration: "
        )),
        "{err}"
    );
    assert!(err.contains("unknown field `speed`"), "{err}");
}

#[test]
fn unreadable_file() {
    let out = run(&vmhost(), &["run", "/nonexistent/vm.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim_end(),
        "vmhost: error: /nonexistent/vm.toml: cannot read the file: No such file or directory (os error 2)"
    );
}
