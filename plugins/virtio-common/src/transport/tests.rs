//! The register file and the status state machine, driven as a driver would, over a fake device.

use super::*;
use crate::interrupt::{INT_CONFIG, INT_VRING, tests::TestLine};
use crate::memory::{AnonRam, guest_memory};
use std::sync::Mutex;
use vm_plugin_api::{
    ErrorKind, RamOnly,
    abi_stable::{sabi_trait::TD_Opaque, std_types::RArc},
    memory::MemoryManager_TO,
};

const RAM_BASE: u64 = 0x8000_0000;
const ACKNOWLEDGE: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_ACKNOWLEDGE;
const DRIVER: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_DRIVER;
const FAILED: u32 = virtio_bindings::virtio_config::VIRTIO_CONFIG_S_FAILED;
const FEATURES: u64 = (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_RING_F_EVENT_IDX) | 0b101;

/// A queue handed over at activation: size, ready, descriptor table address.
type QueueSeen = (u16, bool, u64);

/// What the fake device was asked to do.
#[derive(Default)]
struct Log {
    activations: Vec<(u64, Vec<QueueSeen>)>,
    event_idx: Vec<bool>,
    notifies: Vec<u32>,
    resets: usize,
    config_writes: Vec<(u64, Vec<u8>)>,
}

struct Fake {
    log: Arc<Mutex<Log>>,
    refuse: bool,
}

impl VirtioDevice for Fake {
    fn device_id(&self) -> u32 {
        2
    }
    fn vendor_id(&self) -> u32 {
        0x554d_4551
    }
    fn features(&self) -> u64 {
        FEATURES
    }
    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![16, 8]
    }
    fn config(&self) -> Vec<u8> {
        vec![0x11, 0x22, 0x33, 0x44, 0x55, 0x66]
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        self.log.lock().unwrap().config_writes.push((offset, data.to_vec()));
    }
    fn activate(&mut self, a: Activation) -> Result<(), String> {
        let queues = a.queues.iter().map(|q| (q.size(), q.ready(), q.desc_table())).collect();
        let mut log = self.log.lock().unwrap();
        log.activations.push((a.features, queues));
        log.event_idx.extend(a.queues.iter().map(|q| q.event_idx_enabled()));
        if self.refuse { Err("refused".into()) } else { Ok(()) }
    }
    fn queue_notify(&mut self, queue: u32) {
        self.log.lock().unwrap().notifies.push(queue);
    }
    fn reset(&mut self) {
        self.log.lock().unwrap().resets += 1;
    }
}

struct Rig {
    t: MmioTransport<Fake>,
    log: Arc<Mutex<Log>>,
    line: TestLine,
    irq: Arc<Interrupt>,
    _ram: AnonRam,
}

fn rig() -> Rig {
    rig_with(false)
}

fn rig_with(refuse: bool) -> Rig {
    let ram = AnonRam::new(0x10000).unwrap();
    let mm = MemoryManager_TO::from_ptr(RArc::new(RamOnly(ram.view(RAM_BASE))), TD_Opaque);
    let mem = Arc::new(guest_memory(mm).unwrap());
    let line = TestLine::default();
    let irq = Interrupt::new(Some(line.arc()));
    let log = Arc::new(Mutex::new(Log::default()));
    let fake = Fake { log: Arc::clone(&log), refuse };
    let t = MmioTransport::new("test device".into(), fake, mem, Arc::clone(&irq)).unwrap();
    Rig { t, log, line, irq, _ram: ram }
}

impl Rig {
    fn r(&mut self, offset: u64) -> u32 {
        self.t.read(offset, 4).unwrap() as u32
    }
    fn w(&mut self, offset: u64, value: u32) {
        self.t.write(offset, value as u64, 4).unwrap()
    }
    /// ACKNOWLEDGE, DRIVER, the features, FEATURES_OK.
    fn negotiate(&mut self, features: u64) {
        self.w(reg::STATUS, ACKNOWLEDGE);
        self.w(reg::STATUS, ACKNOWLEDGE | DRIVER);
        for sel in 0..2 {
            self.w(reg::DRIVER_FEATURES_SEL, sel);
            self.w(reg::DRIVER_FEATURES, (features >> (32 * sel)) as u32);
        }
        self.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    }
    /// Queue 0: 8 entries, rings inside RAM.
    fn setup_queue0(&mut self) {
        self.w(reg::QUEUE_SEL, 0);
        self.w(reg::QUEUE_NUM, 8);
        self.w(reg::QUEUE_DESC_LOW, RAM_BASE as u32);
        self.w(reg::QUEUE_DESC_HIGH, 0);
        self.w(reg::QUEUE_DRIVER_LOW, RAM_BASE as u32 + 0x1000);
        self.w(reg::QUEUE_DEVICE_LOW, RAM_BASE as u32 + 0x2000);
        self.w(reg::QUEUE_READY, 1);
    }
}

#[test]
fn identification_registers() {
    let mut r = rig();
    assert_eq!(r.r(reg::MAGIC_VALUE), 0x7472_6976);
    assert_eq!(r.r(reg::VERSION), 2);
    assert_eq!(r.r(reg::DEVICE_ID), 2);
    assert_eq!(r.r(reg::VENDOR_ID), 0x554d_4551);
    assert_eq!(r.r(reg::STATUS), 0);
    assert_eq!(r.r(reg::CONFIG_GENERATION), 0);
}

#[test]
fn feature_words_follow_their_select_registers() {
    let mut r = rig();
    assert_eq!(r.r(reg::DEVICE_FEATURES), FEATURES as u32);
    r.w(reg::DEVICE_FEATURES_SEL, 1);
    assert_eq!(r.r(reg::DEVICE_FEATURES), (FEATURES >> 32) as u32);
    r.w(reg::DEVICE_FEATURES_SEL, 2);
    assert_eq!(r.r(reg::DEVICE_FEATURES), 0);
}

#[test]
fn registers_take_32_bit_accesses_only_and_config_space_takes_bytes() {
    let mut r = rig();
    for size in [1, 2, 8] {
        let e = r.t.read(reg::MAGIC_VALUE, size).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BusFault);
        assert!(e.message().contains("32-bit accesses only"), "{}", e.message());
        assert_eq!(r.t.write(reg::STATUS, 1, size).unwrap_err().kind, ErrorKind::BusFault);
    }
    assert_eq!(r.t.read(0x100, 1).unwrap(), 0x11);
    assert_eq!(r.t.read(0x101, 1).unwrap(), 0x22);
    assert_eq!(r.t.read(0x102, 2).unwrap(), 0x4433);
    assert_eq!(r.t.read(0x100, 4).unwrap(), 0x4433_2211);
    assert_eq!(r.t.read(0x104, 4).unwrap(), 0x6655, "bytes past the config space read as 0");
    assert_eq!(r.t.read(0xffc, 4).unwrap(), 0);
    r.t.write(0x104, 0xabcd, 2).unwrap();
    assert_eq!(r.log.lock().unwrap().config_writes, [(4, vec![0xcd, 0xab])]);
}

#[test]
fn features_ok_is_refused_for_unoffered_features_or_without_version_1() {
    for bad in [FEATURES | 1 << 40, FEATURES & !(1 << VIRTIO_F_VERSION_1)] {
        let mut r = rig();
        r.negotiate(bad);
        assert_eq!(r.r(reg::STATUS), ACKNOWLEDGE | DRIVER, "features {bad:#x}");
    }
    let mut r = rig();
    r.negotiate(1 << VIRTIO_F_VERSION_1 | 1);
    assert_eq!(r.r(reg::STATUS), ACKNOWLEDGE | DRIVER | FEATURES_OK);
    assert_eq!(r.t.driver_features(), 1 << VIRTIO_F_VERSION_1 | 1);
    // Feature words are closed once FEATURES_OK is set.
    r.w(reg::DRIVER_FEATURES_SEL, 0);
    r.w(reg::DRIVER_FEATURES, 0b100);
    assert_eq!(r.t.driver_features(), 1 << VIRTIO_F_VERSION_1 | 1);
}

#[test]
fn driver_ok_needs_features_ok_and_bits_cannot_be_cleared() {
    let mut r = rig();
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | DRIVER_OK);
    assert_eq!(r.r(reg::STATUS), ACKNOWLEDGE | DRIVER, "DRIVER_OK before FEATURES_OK");
    r.w(reg::STATUS, ACKNOWLEDGE);
    assert_eq!(r.r(reg::STATUS), ACKNOWLEDGE | DRIVER, "clearing a bit is ignored");
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FAILED);
    assert_eq!(r.r(reg::STATUS), ACKNOWLEDGE | DRIVER | FAILED);
    assert!(r.log.lock().unwrap().activations.is_empty());
}

#[test]
fn u_boots_start_up_sequence_is_taken() {
    // U-Boot 2023.01: ACKNOWLEDGE, a reset, then DRIVER alone, the features, FEATURES_OK.
    let mut r = rig();
    r.w(reg::STATUS, ACKNOWLEDGE);
    r.w(reg::STATUS, 0);
    r.w(reg::STATUS, DRIVER);
    for sel in 0..2 {
        r.w(reg::DRIVER_FEATURES_SEL, sel);
        r.w(reg::DRIVER_FEATURES, (FEATURES >> (32 * sel)) as u32);
    }
    r.w(reg::STATUS, DRIVER | FEATURES_OK);
    assert_eq!(r.r(reg::STATUS), DRIVER | FEATURES_OK);
    r.setup_queue0();
    r.w(reg::STATUS, DRIVER | FEATURES_OK | DRIVER_OK);
    assert!(r.t.activated());
}

#[test]
fn queue_registers_set_up_the_selected_queue_and_driver_ok_hands_it_over() {
    let mut r = rig();
    r.negotiate(FEATURES);
    r.w(reg::QUEUE_SEL, 1);
    assert_eq!(r.r(reg::QUEUE_NUM_MAX), 8);
    r.w(reg::QUEUE_SEL, 2);
    assert_eq!(r.r(reg::QUEUE_NUM_MAX), 0, "no such queue");
    r.w(reg::QUEUE_READY, 1);
    r.setup_queue0();
    assert_eq!(r.r(reg::QUEUE_NUM_MAX), 16);
    assert_eq!(r.r(reg::QUEUE_READY), 1);
    // A ready queue's set-up is frozen.
    r.w(reg::QUEUE_NUM, 4);
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert_eq!(r.r(reg::STATUS), ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert!(r.t.activated());
    assert_eq!(r.log.lock().unwrap().activations, [(FEATURES, vec![(8, true, RAM_BASE), (8, false, 0)])]);

    r.w(reg::QUEUE_NOTIFY, 0);
    r.w(reg::QUEUE_NOTIFY, 1);
    r.w(reg::QUEUE_NOTIFY, 7);
    assert_eq!(r.log.lock().unwrap().notifies, [0, 1], "queue 7 does not exist");
}

#[test]
fn notify_before_driver_ok_is_ignored() {
    let mut r = rig();
    r.negotiate(FEATURES);
    r.setup_queue0();
    r.w(reg::QUEUE_NOTIFY, 0);
    assert!(r.log.lock().unwrap().notifies.is_empty());
}

#[test]
fn a_queue_outside_ram_gives_device_needs_reset() {
    let mut r = rig();
    r.negotiate(FEATURES);
    r.setup_queue0();
    r.w(reg::QUEUE_SEL, 1);
    r.w(reg::QUEUE_DESC_LOW, 0x1000_1000);
    r.w(reg::QUEUE_READY, 1);
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert_eq!(r.r(reg::STATUS), ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | NEEDS_RESET);
    assert!(!r.t.activated());
    assert!(r.log.lock().unwrap().activations.is_empty());
    assert_eq!(r.r(reg::INTERRUPT_STATUS), INT_CONFIG);
    assert_eq!(r.line.take(), [true]);
    // The driver cannot clear NEEDS_RESET; writing 0 does.
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert_ne!(r.r(reg::STATUS) & NEEDS_RESET, 0);
    r.w(reg::STATUS, 0);
    assert_eq!(r.r(reg::STATUS), 0);
}

#[test]
fn a_device_that_refuses_to_start_gives_device_needs_reset() {
    let mut r = rig_with(true);
    r.negotiate(FEATURES);
    r.setup_queue0();
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert_ne!(r.r(reg::STATUS) & NEEDS_RESET, 0);
    assert!(!r.t.activated());
}

#[test]
fn interrupt_status_and_ack() {
    let mut r = rig();
    r.irq.signal_used();
    assert_eq!(r.r(reg::INTERRUPT_STATUS), INT_VRING);
    assert_eq!(r.line.take(), [true]);
    r.w(reg::INTERRUPT_ACK, INT_VRING);
    assert_eq!(r.r(reg::INTERRUPT_STATUS), 0);
    assert_eq!(r.line.take(), [false]);
}

#[test]
fn writing_zero_to_status_resets_everything() {
    let mut r = rig();
    r.negotiate(FEATURES);
    r.setup_queue0();
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    r.irq.signal_used();
    r.w(reg::DEVICE_FEATURES_SEL, 1);
    r.w(reg::QUEUE_SEL, 1);
    r.line.take();

    r.w(reg::STATUS, 0);
    assert_eq!(r.log.lock().unwrap().resets, 1);
    assert_eq!(r.r(reg::STATUS), 0);
    assert!(!r.t.activated());
    assert_eq!(r.t.driver_features(), 0);
    assert_eq!(r.r(reg::INTERRUPT_STATUS), 0);
    assert_eq!(r.line.take(), [false]);
    assert_eq!(r.r(reg::DEVICE_FEATURES), FEATURES as u32, "select registers back to 0");
    assert_eq!(r.r(reg::QUEUE_READY), 0);
    assert_eq!(r.r(reg::QUEUE_NUM_MAX), 16);
    r.w(reg::QUEUE_NOTIFY, 0);
    assert!(r.log.lock().unwrap().notifies.is_empty(), "no notifies after reset");
    // And the device can be brought up again.
    r.negotiate(FEATURES);
    r.setup_queue0();
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert!(r.t.activated());
    assert_eq!(r.log.lock().unwrap().activations.len(), 2);
}

#[test]
fn config_change_bumps_the_generation_and_interrupts_a_running_driver() {
    let mut r = rig();
    r.t.config_changed();
    assert_eq!(r.r(reg::CONFIG_GENERATION), 1);
    assert_eq!(r.r(reg::INTERRUPT_STATUS), 0, "no driver yet");
    r.negotiate(FEATURES);
    r.setup_queue0();
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    r.t.config_changed();
    assert_eq!(r.r(reg::CONFIG_GENERATION), 2);
    assert_eq!(r.r(reg::INTERRUPT_STATUS), INT_CONFIG);
}

#[test]
fn event_idx_is_set_on_the_queues_only_when_negotiated() {
    for (features, want) in [(FEATURES, true), (FEATURES & !(1 << VIRTIO_RING_F_EVENT_IDX), false)] {
        let mut r = rig();
        r.negotiate(features);
        r.setup_queue0();
        r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        assert_eq!(r.log.lock().unwrap().event_idx, [want, want]);
    }
}

#[test]
fn bad_queue_sizes_and_late_queue_writes_are_ignored() {
    let mut r = rig();
    r.negotiate(FEATURES);
    r.w(reg::QUEUE_SEL, 0);
    for bad in [32, 12, 0, 0x1_0000] {
        r.w(reg::QUEUE_NUM, bad);
    }
    r.setup_queue0();
    r.w(reg::STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    assert_eq!(r.log.lock().unwrap().activations[0].1[0], (8, true, RAM_BASE));
    // After DRIVER_OK the queue belongs to the device: set-up writes change nothing.
    r.w(reg::QUEUE_READY, 0);
    r.w(reg::QUEUE_DESC_LOW, 0x1000);
    assert_eq!(r.r(reg::QUEUE_READY), 1);
    r.w(reg::QUEUE_SEL, 1);
    r.w(reg::QUEUE_NUM, 4);
    r.w(reg::QUEUE_READY, 1);
    assert_eq!(r.r(reg::QUEUE_READY), 0);
}
