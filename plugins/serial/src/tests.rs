//! Device-level tests: the plugin as the host sees it, with real outputs, a recording interrupt
//! line and a recording host.

use super::*;
use crate::shared::PENDING_CAPACITY;
use crate::uart::reg;
use std::{
    io::Write,
    path::PathBuf,
    sync::{Mutex, MutexGuard, mpsc},
    time::Duration,
};
use vm_plugin_api::{
    GuestRam, HostServices, InterruptLine, PluginKind, RamOnly,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, ROption, RStr},
    },
    device::{HostServices_TO, InterruptLine_TO},
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

/// What the device asked of the host: timers set (`Some(delay)`) or cancelled (`None`), stops.
#[derive(Clone, Default)]
struct FakeHost(Arc<Mutex<HostLog>>);

#[derive(Default)]
struct HostLog {
    timers: Vec<(u64, Option<u64>)>,
    stops: Vec<(i32, String)>,
}

impl HostServices for FakeHost {
    fn set_timer(&self, token: u64, delay_ns: u64) {
        self.0.lock().unwrap().timers.push((token, Some(delay_ns)));
    }
    fn cancel_timer(&self, token: u64) {
        self.0.lock().unwrap().timers.push((token, None));
    }
    fn now_ns(&self) -> u64 {
        0
    }
    fn request_stop(&self, exit_code: i32, reason: RStr<'_>) {
        self.0.lock().unwrap().stops.push((exit_code, reason.to_string()));
    }
}

impl FakeHost {
    fn timers(&self) -> Vec<(u64, Option<u64>)> {
        std::mem::take(&mut self.0.lock().unwrap().timers)
    }
    fn stops(&self) -> Vec<(i32, String)> {
        self.0.lock().unwrap().stops.clone()
    }
}

/// Stdin is one per process: the tests that take it run one at a time.
fn stdin_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A context for `config`; unless it names an input, with `input = "none"`, so that tests
/// running in parallel do not compete for stdin.
fn ctx(config: &str, line: Option<&TestLine>) -> DeviceContext {
    ctx_host(config, line, &FakeHost::default())
}

fn ctx_host(config: &str, line: Option<&TestLine>, host: &FakeHost) -> DeviceContext {
    let config =
        if config.contains("input") { config.to_string() } else { format!("{config}\ninput = \"none\"") };
    ctx_exact(&config, line, host)
}

fn ctx_exact(config: &str, line: Option<&TestLine>, host: &FakeHost) -> DeviceContext {
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
        host: HostServices_TO::from_ptr(RArc::new(host.clone()), TD_Opaque),
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
    let regions = s.io_regions();
    assert_eq!(regions, vec![IoRegion::mmio(0, 0x100)]);
    // QEMU's serial_mm_ops: any aligned access of 1 to 8 bytes.
    assert_eq!((regions[0].min_access, regions[0].max_access, regions[0].unaligned), (1, 8, false));
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
    // Outside the eight registers: bus faults, the device goes on.
    for e in [dev.handle_write(0x80, 0x41, 1).unwrap_err(), dev.handle_read(8, 1).unwrap_err()] {
        assert_eq!(e.kind, ErrorKind::BusFault, "{e}");
    }
    let e = dev.handle_read(0xff, 1).unwrap_err();
    assert_eq!(e.message(), "serial device 'uart0': no register at offset 0xff");
    assert_eq!(dev.handle_read(u64::MAX, 0).unwrap_err().kind, ErrorKind::BusFault);
    assert_eq!(dev.status(), vm_plugin_api::ComponentStatus::Running);
    assert_eq!(dev.handle_read(reg::SCR, 1).unwrap(), 0x5a);
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

    // OUT2 clear: on this platform it does not gate the line.
    wr(&mut s, reg::MCR, 0);
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
    s.shared.deliver(&vec![b'.'; PENDING_CAPACITY]);
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
    while got.len() < PENDING_CAPACITY + 2 {
        if rd(&mut s, reg::LSR) & 0x01 != 0 {
            got.push(rd(&mut s, reg::RBR_THR));
        } else {
            std::thread::yield_now();
        }
    }
    done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    reader.join().unwrap();
    assert_eq!(&got[PENDING_CAPACITY..], b"XY");
    assert_eq!(rd(&mut s, reg::LSR) & 0x02, 0, "no overrun");
}

#[test]
fn detaching_input_releases_a_waiting_reader() {
    let s = Serial::create(ctx(r#"output = "none""#, None), Events::default()).unwrap();
    s.shared.set_accepting_input(true);
    s.shared.deliver(&vec![0; PENDING_CAPACITY]);
    let shared = Arc::clone(&s.shared);
    let reader = std::thread::spawn(move || shared.deliver(b"lost"));
    std::thread::sleep(Duration::from_millis(20));
    s.shared.set_accepting_input(false);
    reader.join().unwrap();
}

#[test]
fn stdin_has_one_owner_at_a_time() {
    let _stdin = stdin_lock();
    let a = Serial::create(ctx("output = \"none\"\ninput = \"stdin\"", None), Events::default()).unwrap();
    let e = Serial::create(ctx("output = \"none\"\ninput = \"stdin\"", None), Events::default())
        .err()
        .expect("stdin is taken");
    assert_eq!(e.kind, ErrorKind::Config);
    assert_eq!(e.message(), "stdin is already the input of serial device 'uart0'");
    drop(a);
    let mut b = Serial::create(ctx("output = \"none\"\ninput = \"stdin\"", None), Events::default()).unwrap();
    // Switching input off and on again through the configuration.
    b.update_config("output = \"none\"\ninput = \"none\"").unwrap();
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
    let _stdin = stdin_lock();
    let create = module().create_device().unwrap();
    let dev = create(ctx_exact("", None, &FakeHost::default())).unwrap();
    assert!(dev.validate_config(RStr::from_str(r#"output = "none""#)).is_ok());
    let e = dev.validate_config(RStr::from_str("input = 1")).unwrap_err();
    assert_eq!(e.message(), r#"key `input`: invalid type: integer `1`, expected "auto", "stdin" or "none""#);
    assert_eq!(dev.get_config().as_str(), "output = \"stdout\"\ninput = \"auto\"\n");
}

#[test]
fn the_first_device_takes_stdin_by_default_and_the_next_goes_without() {
    let _stdin = stdin_lock();
    let host = FakeHost::default();
    let console = Serial::create(ctx_exact(r#"output = "none""#, None, &host), Events::default()).unwrap();
    assert!(console.has_stdin);
    let second = Serial::create(ctx_exact(r#"output = "none""#, None, &host), Events::default()).unwrap();
    assert!(!second.has_stdin, "no error: it just gets no input");
    let e = Serial::create(ctx_exact("output = \"none\"\ninput = \"stdin\"", None, &host), Events::default())
        .err()
        .expect("asking for stdin outright is refused while it is taken");
    assert_eq!(e.message(), "stdin is already the input of serial device 'uart0'");
    drop(console);
    let mut again = second;
    again.update_config("output = \"none\"\ninput = \"stdin\"").unwrap();
    assert!(again.has_stdin, "freed by the console's drop");
    again.update_config("output = \"none\"\ninput = \"none\"").unwrap();
    assert!(!again.has_stdin);
}

#[test]
fn offsets_past_the_eight_registers_are_bus_faults_and_change_nothing() {
    let line = TestLine::default();
    let (mut s, path) = serial_to_file("bus-fault", Some(&line));
    wr(&mut s, reg::IER, 0x02);
    assert_eq!(line.take(), [true]);
    for off in [8, 9, 0x10, 0x7f, 0xf8] {
        let e = s.write(off, 0x41, 1).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BusFault);
        assert_eq!(e.message(), format!("serial device 'uart0': no register at offset {off:#x}"));
        assert_eq!(s.read(off, 8).unwrap_err().kind, ErrorKind::BusFault);
    }
    assert_eq!(line.take(), [] as [bool; 0]);
    assert!(contents(&path).is_empty());
    // An 8-byte access at offset 0 is the register there, as in QEMU.
    s.write(reg::RBR_THR, 0x4142_4344_4546_4748, 8).unwrap();
    assert_eq!(contents(&path), b"H");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn reset_lowers_the_line_and_gives_the_power_on_registers() {
    let line = TestLine::default();
    let host = FakeHost::default();
    let create = module().create_device().unwrap();
    let mut dev = create(ctx_host(r#"output = "none""#, Some(&line), &host)).unwrap();
    dev.handle_write(reg::IER, 0x0f, 1).unwrap();
    dev.handle_write(reg::LCR, 0x03, 1).unwrap();
    dev.handle_write(reg::SCR, 0x99, 1).unwrap();
    assert_eq!(line.take(), [true]);
    dev.reset().unwrap();
    assert_eq!(line.take(), [false]);
    assert_eq!(host.timers(), [(shared::TIMEOUT_TOKEN, None)], "the character timeout is cancelled");
    let regs: Vec<u64> = (1..8).map(|off| dev.handle_read(off, 1).unwrap()).collect();
    assert_eq!(regs, [0x00, 0x01, 0x00, 0x08, 0x60, 0xb0, 0x00]);
}

#[test]
fn the_character_timeout_runs_on_the_hosts_timer() {
    let line = TestLine::default();
    let host = FakeHost::default();
    let mut s =
        Serial::create(ctx_host(r#"output = "none""#, Some(&line), &host), Events::default()).unwrap();
    wr(&mut s, reg::IIR_FCR, 0xc1);
    wr(&mut s, reg::IER, 0x01);
    assert_eq!(host.timers(), [(shared::TIMEOUT_TOKEN, None)], "enabling the FIFO cleared it");
    s.shared.set_accepting_input(true);
    s.shared.deliver(b"ok");
    assert_eq!(line.take(), [] as [bool; 0], "two bytes are below the trigger level of 14");
    // Four characters at reset's line settings: divisor 12 is 19200 baud, LCR 0 is 5N1 (7 bits).
    assert_eq!(host.timers(), [(shared::TIMEOUT_TOKEN, Some(4 * (7 * 1_000_000_000 / 19_200)))]);
    s.timer(99).unwrap();
    assert_eq!(line.take(), [] as [bool; 0], "not our token");
    s.timer(shared::TIMEOUT_TOKEN).unwrap();
    assert_eq!(line.take(), [true]);
    assert_eq!(rd(&mut s, reg::IIR_FCR), 0xcc);
    assert_eq!(rd(&mut s, reg::RBR_THR), b'o');
    assert_eq!(line.take(), [false]);
}

#[test]
fn input_past_the_fifo_waits_on_the_host_side_and_follows_the_trigger_level() {
    let mut s = Serial::create(ctx(r#"output = "none""#, None), Events::default()).unwrap();
    wr(&mut s, reg::IIR_FCR, 0x81);
    s.shared.set_accepting_input(true);
    let text: Vec<u8> = (0..100u8).collect();
    s.shared.deliver(&text);
    let mut got = Vec::new();
    while rd(&mut s, reg::LSR) & 0x01 != 0 {
        got.push(rd(&mut s, reg::RBR_THR));
    }
    assert_eq!(got, text, "no overrun, nothing lost, in order");
    assert_eq!(rd(&mut s, reg::LSR), 0x60);
}

/// Feeds `input` through a real pipe into the device's input, as the stdin thread does.
fn pump_through_pipe(s: &Serial, input: &[u8]) -> std::io::Result<()> {
    let (mut r, mut w) = std::io::pipe().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || w.write_all(&input));
    let shared = Arc::clone(&s.shared);
    let result = input::pump(&mut r, &|| Some(Arc::clone(&shared)));
    writer.join().unwrap().unwrap();
    result
}

fn received(s: &mut Serial) -> Vec<u8> {
    let mut got = Vec::new();
    while rd(s, reg::LSR) & 0x01 != 0 {
        got.push(rd(s, reg::RBR_THR));
    }
    got
}

#[test]
fn piped_input_reaches_the_guest_and_its_end_is_not_an_error() {
    let host = FakeHost::default();
    let mut s = Serial::create(ctx_host(r#"output = "none""#, None, &host), Events::default()).unwrap();
    wr(&mut s, reg::IIR_FCR, 0x01);
    s.shared.set_accepting_input(true);
    pump_through_pipe(&s, b"version\r").expect("end of input is Ok");
    assert_eq!(received(&mut s), b"version\r");
    assert!(host.stops().is_empty(), "the end of input does not stop the VM");
    // The device is still there for the guest.
    wr(&mut s, reg::SCR, 0x42);
    assert_eq!(rd(&mut s, reg::SCR), 0x42);
}

#[test]
fn escape_keys_on_the_input_stop_the_vm_or_send_a_ctrl_a() {
    let host = FakeHost::default();
    let mut s = Serial::create(ctx_host(r#"output = "none""#, None, &host), Events::default()).unwrap();
    wr(&mut s, reg::IIR_FCR, 0x01);
    s.shared.set_accepting_input(true);
    pump_through_pipe(&s, b"ab\x01a\x01\x01\x01h\x01zc\x01xd").unwrap();
    assert_eq!(
        received(&mut s),
        b"ab\x01\x01cd",
        "C-a a and C-a C-a send C-a; C-a h, C-a z and C-a x send nothing"
    );
    assert_eq!(host.stops(), [(0, "Ctrl-A X".to_string())]);
}

#[test]
fn a_read_error_ends_the_input_with_that_error() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("device gone"))
        }
    }
    let s = Serial::create(ctx(r#"output = "none""#, None), Events::default()).unwrap();
    let shared = Arc::clone(&s.shared);
    let e = input::pump(&mut Broken, &|| Some(Arc::clone(&shared))).unwrap_err();
    assert_eq!(e.to_string(), "device gone");
}
