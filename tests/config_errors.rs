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
            "vmhost: error: {file}:3:1: unknown key `memroy`, expected one of `memory`, `slice`, `clock`"
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
    assert!(err.contains("is a device plugin, but an engine plugin is needed here"), "{err}");
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
fn bad_plugin_config_is_reported_by_the_plugin_at_the_key() {
    let text = format!("{HEAD}{}[device.config]\nspeed = 9600\n", device("uart0", "serial", "0x10000000"));
    let (_, err, file) = refuse("cfg-plugin-config", &text);
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:12:1: device 'uart0' (serial) refused its configuration: unknown key `speed`, \
             expected `output` or `input`"
        )
    );
    let text = format!("{HEAD}{}[device.config]\noutput = 3\n", device("uart0", "serial", "0x10000000"));
    let (_, err, file) = refuse("cfg-plugin-config-type", &text);
    assert!(
        err.starts_with(&format!(
            "vmhost: error: {file}:12:10: device 'uart0' (serial) refused its configuration: key `output`: \
             invalid type: integer `3`, expected"
        )),
        "{err}"
    );
}

#[test]
fn bad_engine_config_is_reported_at_the_key() {
    let (_, err, file) = refuse("cfg-engine-config", &format!("{HEAD}[engine.config]\nasnyc = true\n"));
    assert!(
        err.starts_with(&format!("vmhost: error: {file}:8:1: engine 'interp': unknown key `asnyc`")),
        "{err}"
    );
    let (_, err, file) = refuse("cfg-engine-config-type", &format!("{HEAD}[engine.config]\nasync = 1\n"));
    assert!(
        err.starts_with(&format!("vmhost: error: {file}:8:9: engine 'interp': key `async`: invalid type")),
        "{err}"
    );
}

/// The DMA fixture: a device whose config struct lacks `deny_unknown_fields`, with a `panic` key.
fn dma_device() -> String {
    build_out_of_tree("dma", "tests/fixtures/dma-device", None).display().to_string()
}

fn dma_config(name: &str, config: &str) -> (Option<i32>, String, String) {
    refuse(name, &format!("{HEAD}{}[device.config]\n{config}\n", device("dma0", &dma_device(), "0x10002000")))
}

#[test]
fn typo_in_a_lenient_plugins_table_is_refused_at_the_key() {
    let (code, err, file) = dma_config("cfg-plugin-typo", "sede = 42");
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:12:1: device 'dma0' (dma) refused its configuration: unknown key `sede`"
        )
    );
}

#[test]
fn type_error_in_a_plugins_table_names_the_key_line_and_column() {
    let (_, err, file) = dma_config("cfg-plugin-type", "seed = \"x\"");
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:12:8: device 'dma0' (dma) refused its configuration: key `seed`: invalid type: \
             string \"x\", expected u64"
        )
    );
}

#[test]
fn good_plugin_tables_still_parse() {
    let dir = scratch("cfg-plugin-good");
    let dev = format!(
        "{UART}\n[[device]]\nid = \"dma0\"\nplugin = \"{}\"\nbase = 0x1000_2000\n[device.config]\nseed = 7\n",
        dma_device()
    );
    let text =
        format!("{UART}[device.config]\noutput = \"stdout\"\ninput = \"none\"\n{}", &dev[UART.len()..]);
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &text);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Hello"), "{}", stdout(&out));
}

/// The error line: the plugin's panic message (and backtrace) from the panic hook comes before it.
fn last_line(err: &str) -> &str {
    err.lines().last().unwrap_or_default()
}

#[test]
fn panic_in_a_device_factory_is_reported_as_a_panic() {
    let (code, err, file) = dma_config("cfg-plugin-panic-create", "panic = \"create\"");
    assert_eq!(code, Some(1));
    assert_eq!(
        last_line(&err),
        format!(
            "vmhost: error: {file}:9:10: device 'dma0' (dma): panicked while being created: told to panic in create"
        )
    );
}

#[test]
fn panic_in_io_regions_or_fdt_node_is_reported_as_a_panic() {
    let (code, err, file) = dma_config("cfg-plugin-panic-regions", "panic = \"io_regions\"");
    assert_eq!(code, Some(1));
    assert_eq!(
        last_line(&err),
        format!(
            "vmhost: error: {file}:10:8: device 'dma0' (dma) io_regions panicked: told to panic in io_regions"
        )
    );
    let (code, err, file) = dma_config("cfg-plugin-panic-fdt", "panic = \"fdt_node\"");
    assert_eq!(code, Some(1));
    assert_eq!(
        last_line(&err),
        format!(
            "vmhost: error: {file}:9:10: device 'dma0' (dma) fdt_node panicked: told to panic in fdt_node"
        )
    );
}

#[test]
fn irq_zero_is_refused() {
    let (code, err, file) =
        refuse("cfg-irq-zero", &format!("{HEAD}{}irq = 0\n", device("uart0", "serial", "0x10000000")));
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:11:7: key `device.irq`: line 0 is reserved (on a PLIC, source 0 means no \
             interrupt); use 1 to 95"
        )
    );
}

#[test]
fn two_devices_on_one_interrupt_line_are_refused() {
    let text = format!(
        "{HEAD}{}irq = 10\n{}irq = 10\n",
        device("uart0", "serial", "0x10000000"),
        device("uart1", "serial", "0x10001000")
    );
    let (code, err, file) = refuse("cfg-irq-shared", &text);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:16:7: key `device.irq`: devices 'uart0' and 'uart1' are both on interrupt line \
             10; give each device its own line"
        )
    );
}

#[test]
fn duplicate_key_is_named() {
    let (code, err, file) =
        refuse("cfg-dup-key", &HEAD.replace("memory = \"64M\"\n", "memory = \"64M\"\nmemory = 1\n"));
    assert_eq!(code, Some(1));
    assert!(err.starts_with(&format!("vmhost: error: {file}:3:1: duplicate key `memory`")), "{err}");
}

#[test]
fn huge_memory_is_called_too_large() {
    let (_, err, file) = refuse("cfg-huge-mem", &HEAD.replace("\"64M\"", "\"18446744073709551615\""));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:2:10: key `machine.memory`: 18446744073709551615 bytes is too large; at most 64 GiB"
        )
    );
}

#[test]
fn memory_that_is_an_array_says_an_array() {
    let (_, err, file) = refuse("cfg-array-mem", &HEAD.replace("\"64M\"", "[64]"));
    assert!(
        err.starts_with(&format!(
            "vmhost: error: {file}:2:10: key `machine.memory`: found an array; expected a size"
        )),
        "{err}"
    );
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

#[test]
fn boot_with_nothing_to_boot() {
    let (code, err, file) = refuse("cfg-boot-empty", &HEAD.replace("kernel = \"hello.elf\"\n", ""));
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:3:1: key `boot`: nothing to boot; give `kernel` (started in M-mode), `firmware`, or both"
        )
    );
}

#[test]
fn initrd_and_cmdline_need_a_kernel() {
    for (key, value) in [("initrd", "\"hello.elf\""), ("cmdline", "\"console=ttyS0\"")] {
        let text =
            HEAD.replace("kernel = \"hello.elf\"", &format!("firmware = \"hello.elf\"\n{key} = {value}"));
        let (code, err, file) = refuse(&format!("cfg-{key}-alone"), &text);
        assert_eq!(code, Some(1));
        let col = key.len() + 4;
        assert_eq!(
            err.trim_end(),
            format!(
                "vmhost: error: {file}:5:{col}: key `boot.{key}`: only allowed with `boot.kernel`, the stage it is for"
            )
        );
    }
}

#[test]
fn boot_keys_are_checked() {
    let (_, err, file) = refuse("cfg-boot-unknown", &HEAD.replace("[boot]\n", "[boot]\nbios = \"x\"\n"));
    assert!(
        err.starts_with(&format!(
            "vmhost: error: {file}:4:1: unknown key `bios`, expected one of `firmware`, `kernel`, `initrd`, `cmdline`, `dtb`"
        )),
        "{err}"
    );
    let (_, err, file) = refuse("cfg-boot-cmdline-type", &HEAD.replace("[boot]\n", "[boot]\ncmdline = 3\n"));
    assert!(
        err.starts_with(&format!("vmhost: error: {file}:4:11: invalid type: integer `3`, expected a string")),
        "{err}"
    );
    let (_, err, file) =
        refuse("cfg-boot-cmdline-nul", &HEAD.replace("[boot]\n", "[boot]\ncmdline = \"a\\u0000b\"\n"));
    assert_eq!(
        err.trim_end(),
        format!("vmhost: error: {file}:4:11: key `boot.cmdline`: must not contain a NUL character")
    );
}

#[test]
fn unknown_clock_is_refused() {
    let text = HEAD.replace("memory = \"64M\"", "memory = \"64M\"\nclock = \"wall\"");
    let (code, err, file) = refuse("cfg-clock", &text);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.trim_end(),
        format!(
            "vmhost: error: {file}:3:9: key `machine.clock`: `wall` is not a clock; use \"host\" or \"instructions\""
        )
    );
}
