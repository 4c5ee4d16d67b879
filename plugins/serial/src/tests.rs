//! Device-level tests: the plugin as the host sees it, with real outputs and a recording interrupt line.

use super::*;
use crate::uart::{RX_CAPACITY, reg};
use std::{
    path::PathBuf,
    sync::{Mutex, mpsc},
    time::Duration,
};
use vm_plugin_api::{
    GuestRam, InterruptLine, PluginKind, RamOnly,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, ROption, RStr},
    },
    device::InterruptLine_TO,
    event_sink,
    memory::MemoryManager_TO,
};

/// An interrupt line that records every `set_level` call.
#[derive(Clone, Default)]
struct TestLine(Arc<Mutex<Vec<bool>>>);

impl InterruptLine for TestLine {
    fn set_level(&self, level: bool) {
        self.0.lock().unwrap().push(level);
    }
    fn number(&self) -> u32 {
        10
    }
}

impl TestLine {
    fn take(&self) -> Vec<bool> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn ctx(config: &str, line: Option<&TestLine>) -> DeviceContext {
    let ram = GuestRam { base: 0x8000_0000, host: std::ptr::null_mut(), size: 0 };
    DeviceContext {
        id: "uart0".into(),
        base: 0x1000_0000,
        config: config.into(),
        config_dir: std::env::temp_dir().to_string_lossy().into_owned().into(),
        irq: match line {
            Some(l) => ROption::RSome(InterruptLine_TO::from_ptr(RArc::new(l.clone()), TD_Opaque)),
            None => ROption::RNone,
        },
        memory: MemoryManager_TO::from_ptr(RArc::new(RamOnly(ram)), TD_Opaque),
    }
}

/// A file path unique to this test process and `name`, removed first.
fn temp_path(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("vm-serial-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn file_config(path: &std::path::Path) -> String {
    SerialConfig { output: OutputConfig::File(path.into()), input: InputConfig::None }.to_toml()
}

/// A device whose output goes to a fresh file; returns the device and the file.
fn serial_to_file(name: &str, line: Option<&TestLine>) -> (Serial, PathBuf) {
    let path = temp_path(name);
    let s = Serial::create(ctx(&file_config(&path), line), Events::default()).unwrap();
    (s, path)
}

fn rd(s: &mut Serial, offset: u64) -> u8 {
    s.read(offset, 1).unwrap() as u8
}

fn wr(s: &mut Serial, offset: u64, value: u8) {
    s.write(offset, value as u64, 1).unwrap();
}

fn contents(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[test]
fn module_describes_a_serial_device_plugin() {
    let info = module().plugin_info();
    assert_eq!(info.name.as_str(), "serial");
    assert_eq!(info.kind, PluginKind::Device);
    assert_eq!(info.version.as_str(), env!("CARGO_PKG_VERSION"));
    assert_eq!(info.api_version.as_str(), vm_plugin_api::PLUGIN_API_VERSION);
    assert!(!info.description.is_empty());
}

#[test]
fn host_view_regions_type_and_fdt_node() {
    let s = Serial::create(ctx(r#"output = "none""#, None), Events::default()).unwrap();
    assert_eq!(s.device_type(), DeviceType::Serial);
    assert_eq!(s.io_regions(), vec![IoRegion::mmio(0, 0x100)]);
    let node = s.fdt_node();
    assert_eq!(node.name.as_str(), "serial");
    assert_eq!(node.compatible.iter().map(|c| c.as_str()).collect::<Vec<_>>(), ["ns16550a"]);
    assert_eq!(node.props.len(), 1);
    assert_eq!(node.props[0].name.as_str(), "clock-frequency");
    assert_eq!(node.props[0].value, FdtValue::U32(3_686_400));
}

#[test]
fn through_the_ffi_adapter_thr_bytes_reach_the_file_and_wide_accesses_use_the_low_byte() {
    let path = temp_path("ffi");
    let create = module().create_device().expect("a device plugin has a device factory");
    let mut dev = create(ctx(&file_config(&path), None)).unwrap();
    assert_eq!(dev.name().as_str(), "serial");
    assert_eq!(dev.device_id().as_str(), "uart0");
    dev.init().unwrap();
    dev.start().unwrap();
    for &b in b"ok\n" {
        assert_eq!(dev.handle_read(reg::LSR, 1).unwrap() & 0x20, 0x20);
        dev.handle_write(reg::RBR_THR, b as u64, 1).unwrap();
    }
    // A 4-byte store writes its low byte; a 4-byte load returns the register zero-extended.
    dev.handle_write(reg::RBR_THR, 0x1234_5621, 4).unwrap();
    dev.handle_write(reg::SCR, 0xffff_ff5a, 4).unwrap();
    assert_eq!(dev.handle_read(reg::SCR, 4).unwrap(), 0x5a);
    assert_eq!(dev.handle_read(reg::LSR, 8).unwrap(), 0x60);
    // Outside the eight registers: reads are 0, writes vanish, nothing panics.
    dev.handle_write(0x80, 0x41, 1).unwrap();
    assert_eq!(dev.handle_read(0xff, 1).unwrap(), 0);
    assert_eq!(dev.handle_read(u64::MAX, 0).unwrap(), 0);
    dev.stop().unwrap();
    assert_eq!(contents(&path), b"ok\n!");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn file_output_appends_to_an_existing_file() {
    let path = temp_path("append");
    std::fs::write(&path, b"before|").unwrap();
    let mut s = Serial::create(ctx(&file_config(&path), None), Events::default()).unwrap();
    wr(&mut s, reg::RBR_THR, b'x');
    // Unbuffered: the byte is there before stop.
    assert_eq!(contents(&path), b"before|x");
    drop(s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn linux_8250_probe_and_setup_transmit_nothing_then_console_output_arrives() {
    let line = TestLine::default();
    let (mut s, path) = serial_to_file("linux", Some(&line));
    // autoconfig: IER read-back, loopback test, scratch test, FIFO detection.
    let saved_ier = rd(&mut s, reg::IER);
    wr(&mut s, reg::IER, 0);
    assert_eq!(rd(&mut s, reg::IER) & 0x0f, 0);
    wr(&mut s, reg::IER, 0x0f);
    assert_eq!(rd(&mut s, reg::IER) & 0x0f, 0x0f);
    wr(&mut s, reg::IER, saved_ier);
    let saved_mcr = rd(&mut s, reg::MCR);
    wr(&mut s, reg::MCR, 0x10 | 0x0a);
    assert_eq!(rd(&mut s, reg::MSR) & 0xf0, 0x90);
    wr(&mut s, reg::MCR, saved_mcr);
    for v in [0xa5, 0x5a] {
        wr(&mut s, reg::SCR, v);
        assert_eq!(rd(&mut s, reg::SCR), v);
    }
    wr(&mut s, reg::LCR, 0xbf);
    wr(&mut s, reg::IIR_FCR, 0);
    wr(&mut s, reg::LCR, 0);
    wr(&mut s, reg::IIR_FCR, 0x01);
    assert_eq!(rd(&mut s, reg::IIR_FCR) >> 6, 3, "a 16550A");
    // Loopback data path, as a diagnostic would use it.
    wr(&mut s, reg::MCR, 0x10);
    wr(&mut s, reg::RBR_THR, 0x55);
    assert_eq!(rd(&mut s, reg::LSR), 0x61);
    assert_eq!(rd(&mut s, reg::RBR_THR), 0x55);
    wr(&mut s, reg::MCR, 0);
    // set_termios: 115200 8N1, FIFOs on and cleared.
    wr(&mut s, reg::LCR, 0x83);
    wr(&mut s, reg::RBR_THR, 2);
    wr(&mut s, reg::IER, 0);
    wr(&mut s, reg::LCR, 0x03);
    wr(&mut s, reg::IIR_FCR, 0x07);
    assert_eq!(rd(&mut s, reg::IIR_FCR), 0xc1);
    assert!(contents(&path).is_empty(), "probing must not print");
    // Enabling all four sources in the IER probe raises THRE for a moment; the line ends low.
    assert_eq!(line.take(), [true, false]);

    for &b in b"login: " {
        while rd(&mut s, reg::LSR) & 0x20 == 0 {}
        wr(&mut s, reg::RBR_THR, b);
    }
    assert_eq!(contents(&path), b"login: ");
    drop(s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn u_boot_ns16550_init_sequence() {
    let (mut s, path) = serial_to_file("uboot", None);
    while rd(&mut s, reg::LSR) & 0x40 == 0 {}
    wr(&mut s, reg::IER, 0);
    wr(&mut s, reg::MCR, 0x03);
    wr(&mut s, reg::IIR_FCR, 0x07);
    wr(&mut s, reg::LCR, 0x03);
    wr(&mut s, reg::LCR, 0x83);
    wr(&mut s, reg::RBR_THR, 2);
    wr(&mut s, reg::IER, 0);
    wr(&mut s, reg::LCR, 0x03);
    wr(&mut s, reg::RBR_THR, b'=');
    wr(&mut s, reg::RBR_THR, b'>');
    assert_eq!(contents(&path), b"=>");
    assert_eq!(rd(&mut s, reg::MCR), 0x03);
    drop(s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn interrupt_line_follows_thre_and_calls_the_host_only_on_changes() {
    let line = TestLine::default();
    let (mut s, path) = serial_to_file("irq-thre", Some(&line));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    s.events.subscribe(event_sink(move |e| log.lock().unwrap().push(e.clone())));

    // OUT2 stays clear: on this platform it does not gate the line.
    assert_eq!(rd(&mut s, reg::MCR), 0);
    wr(&mut s, reg::IER, 0x02);
    assert_eq!(line.take(), [true]);
    wr(&mut s, reg::IER, 0x02);
    rd(&mut s, reg::LSR);
    assert_eq!(line.take(), [] as [bool; 0], "unchanged level: no call");
    assert_eq!(rd(&mut s, reg::IIR_FCR), 0x02);
    assert_eq!(line.take(), [false], "reading IIR consumed THRE");
    wr(&mut s, reg::RBR_THR, b'a');
    assert_eq!(line.take(), [true], "writing THR re-armed it");
    wr(&mut s, reg::RBR_THR, b'b');
    assert_eq!(line.take(), [] as [bool; 0]);
    wr(&mut s, reg::IER, 0);
    assert_eq!(line.take(), [false]);
    assert_eq!(contents(&path), b"ab");

    let events = seen.lock().unwrap().clone();
    let levels: Vec<_> = events
        .iter()
        .map(|e| match e {
            VmEvent::DeviceInterrupt { irq: 10, level } => *level,
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(levels, [true, false, true, false]);
    drop(s);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn received_bytes_raise_the_line_until_drained() {
    let line = TestLine::default();
    let mut s = Serial::create(ctx(r#"output = "none""#, Some(&line)), Events::default()).unwrap();
    s.shared.set_accepting_input(true);
    s.shared.deliver(b"hi");
    assert_eq!(line.take(), [] as [bool; 0], "ERBFI is off");
    assert_eq!(rd(&mut s, reg::LSR), 0x61);
    wr(&mut s, reg::IER, 0x01);
    assert_eq!(line.take(), [true]);
    assert_eq!(rd(&mut s, reg::IIR_FCR) & 0x0f, 0x04);
    assert_eq!(rd(&mut s, reg::RBR_THR), b'h');
    assert_eq!(line.take(), [] as [bool; 0]);
    assert_eq!(rd(&mut s, reg::RBR_THR), b'i');
    assert_eq!(line.take(), [false]);
    s.shared.deliver(b"!");
    assert_eq!(line.take(), [true]);
}

#[test]
fn a_full_queue_makes_input_wait_for_the_guest_not_drop_bytes() {
    let line = TestLine::default();
    let mut s = Serial::create(ctx(r#"output = "none""#, Some(&line)), Events::default()).unwrap();
    wr(&mut s, reg::IER, 0x01);
    s.shared.set_accepting_input(true);
    s.shared.deliver(&vec![b'.'; RX_CAPACITY]);
    assert_eq!(line.take(), [true]);

    let (done_tx, done_rx) = mpsc::channel();
    let shared = Arc::clone(&s.shared);
    let reader = std::thread::spawn(move || {
        shared.deliver(b"XY");
        done_tx.send(()).unwrap();
    });
    assert!(done_rx.recv_timeout(Duration::from_millis(100)).is_err(), "the reader waits for space");
    // The guest drains; the waiting reader then completes, in order, losing nothing.
    let mut got = Vec::new();
    while got.len() < RX_CAPACITY + 2 {
        if rd(&mut s, reg::LSR) & 0x01 != 0 {
            got.push(rd(&mut s, reg::RBR_THR));
        } else {
            std::thread::yield_now();
        }
    }
    done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    reader.join().unwrap();
    assert_eq!(&got[RX_CAPACITY..], b"XY");
    assert_eq!(rd(&mut s, reg::LSR) & 0x02, 0, "no overrun");
}

#[test]
fn detaching_input_releases_a_waiting_reader() {
    let s = Serial::create(ctx(r#"output = "none""#, None), Events::default()).unwrap();
    s.shared.set_accepting_input(true);
    s.shared.deliver(&vec![0; RX_CAPACITY]);
    let shared = Arc::clone(&s.shared);
    let reader = std::thread::spawn(move || shared.deliver(b"lost"));
    std::thread::sleep(Duration::from_millis(20));
    s.shared.set_accepting_input(false);
    reader.join().unwrap();
}

#[test]
fn stdin_has_one_owner_at_a_time() {
    let a = Serial::create(ctx("output = \"none\"\ninput = \"stdin\"", None), Events::default()).unwrap();
    let e = Serial::create(ctx("output = \"none\"\ninput = \"stdin\"", None), Events::default())
        .err()
        .expect("stdin is taken");
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.message(), "stdin is already the input of serial device 'uart0'");
    drop(a);
    let mut b = Serial::create(ctx("output = \"none\"\ninput = \"stdin\"", None), Events::default()).unwrap();
    // Switching input off and on again through the configuration.
    b.update_config(r#"output = "none""#).unwrap();
    let c = Serial::create(ctx("output = \"none\"\ninput = \"stdin\"", None), Events::default()).unwrap();
    assert_eq!(
        b.update_config("output = \"none\"\ninput = \"stdin\"").unwrap_err().message(),
        "stdin is already the input of serial device 'uart0'"
    );
    assert_eq!(
        b.get_config(),
        SerialConfig { output: OutputConfig::None, input: InputConfig::None }.to_toml()
    );
    drop(c);
    b.update_config("output = \"none\"\ninput = \"stdin\"").unwrap();
}

#[test]
fn config_errors_come_back_from_create_with_exact_messages() {
    let err = |text: &str| Serial::create(ctx(text, None), Events::default()).err().expect(text);
    let e = err("speed = 9600");
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.message(), "unknown key `speed`, expected `output` or `input`");
    let e = err(r#"output = "console""#);
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(
        e.message(),
        r#"key `output`: unknown output `console`: expected "stdout", "stderr", "none" or { file = "path" }"#
    );
    let e = err(r#"output = { file = "/nonexistent-vm-serial-dir/log" }"#);
    assert_eq!(e.kind, ErrorKind::Io);
    assert_eq!(
        e.message(),
        "cannot open output file `/nonexistent-vm-serial-dir/log`: No such file or directory (os error 2)"
    );
}

#[test]
fn update_config_switches_output_and_get_config_reports_it() {
    let (mut s, first) = serial_to_file("switch-a", None);
    let second = temp_path("switch-b");
    wr(&mut s, reg::RBR_THR, b'1');
    assert!(s.validate_config("bogus = 1").is_err());
    assert!(s.update_config(r#"output = "tty""#).is_err());
    assert_eq!(s.get_config(), file_config(&first), "a refused update changes nothing");
    s.update_config(&file_config(&second)).unwrap();
    wr(&mut s, reg::RBR_THR, b'2');
    assert_eq!((contents(&first), contents(&second)), (b"1".to_vec(), b"2".to_vec()));
    assert_eq!(SerialConfig::from_toml(&s.get_config()).unwrap().output, OutputConfig::File(second.clone()));
    s.validate_config(r#"output = "stderr""#).unwrap();
    drop(s);
    let _ = std::fs::remove_file(&first);
    let _ = std::fs::remove_file(&second);
}

#[test]
fn a_failing_output_is_an_error_that_stops_the_vm() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("skipped: no /dev/full on this host");
        return;
    }
    let mut s = Serial::create(ctx(r#"output = { file = "/dev/full" }"#, None), Events::default()).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    s.events.subscribe(event_sink(move |e| log.lock().unwrap().push(e.clone())));
    let e = s.write(reg::RBR_THR, b'a' as u64, 1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.message.starts_with("serial device 'uart0': writing console output failed ("), "{e}");
    assert!(e.message.ends_with("); stopping the VM"), "{e}");
    let events = seen.lock().unwrap().clone();
    assert_eq!(events, [VmEvent::ErrorOccurred(e.message.clone())]);
    // Register writes that transmit nothing still work.
    s.write(reg::SCR, 0x5a, 1).unwrap();
}

#[test]
fn validate_config_through_the_adapter() {
    let create = module().create_device().unwrap();
    let dev = create(ctx("", None)).unwrap();
    assert!(dev.validate_config(RStr::from_str(r#"output = "none""#)).is_ok());
    let e = dev.validate_config(RStr::from_str("input = 1")).unwrap_err();
    assert_eq!(e.message(), r#"key `input`: invalid type: integer `1`, expected "none" or "stdin""#);
    assert_eq!(dev.get_config().as_str(), "output = \"stdout\"\ninput = \"none\"\n");
}
