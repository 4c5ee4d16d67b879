//! The 16550A register model: what the guest sees at each offset, with no host I/O.
//!
//! It follows QEMU 7.2's `hw/char/serial.c` where QEMU and the datasheet agree, and the datasheet
//! where QEMU has no source for a behaviour (MSR deltas from loopback). [`Uart::write`] hands back
//! the byte to transmit, received bytes come in through [`Uart::receive`], and the character
//! timeout timer is asked for through [`Uart::take_timer`]; the caller does the host side.

use std::collections::VecDeque;

/// Register offsets from the device base (reg-shift 0, byte-wide registers).
pub(crate) mod reg {
    /// Receive buffer (read) / transmit holding (write); divisor latch low with LCR.DLAB.
    pub const RBR_THR: u64 = 0;
    /// Interrupt enable; divisor latch high with LCR.DLAB.
    pub const IER: u64 = 1;
    /// Interrupt identification (read) / FIFO control (write).
    pub const IIR_FCR: u64 = 2;
    /// Line control.
    pub const LCR: u64 = 3;
    /// Modem control.
    pub const MCR: u64 = 4;
    /// Line status.
    pub const LSR: u64 = 5;
    /// Modem status.
    pub const MSR: u64 = 6;
    /// Scratch.
    pub const SCR: u64 = 7;
    /// How many registers there are: offsets from here on hold none.
    pub const COUNT: u64 = 8;
}

const IER_ERBFI: u8 = 0x01;
const IER_ETBEI: u8 = 0x02;
const IER_ELSI: u8 = 0x04;
const IER_EDSSI: u8 = 0x08;
/// Only the four standard enables exist; Linux probes bit 6 (XScale UUE) and must see it stay clear.
const IER_MASK: u8 = 0x0f;

const IIR_MODEM_STATUS: u8 = 0x00;
const IIR_NONE: u8 = 0x01;
const IIR_THRE: u8 = 0x02;
const IIR_RX_DATA: u8 = 0x04;
const IIR_LINE_STATUS: u8 = 0x06;
const IIR_CHAR_TIMEOUT: u8 = 0x0c;
const IIR_FIFOS_ENABLED: u8 = 0xc0;

const FCR_ENABLE: u8 = 0x01;
const FCR_CLEAR_RX: u8 = 0x02;
const FCR_CLEAR_TX: u8 = 0x04;
/// The bits that stick: enable, DMA mode and the trigger level (as QEMU keeps them).
const FCR_STICKY: u8 = 0xc9;

const LCR_DLAB: u8 = 0x80;

const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_BI: u8 = 0x10;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;

const MSR_DCTS: u8 = 0x01;
const MSR_DDSR: u8 = 0x02;
const MSR_TERI: u8 = 0x04;
const MSR_DDCD: u8 = 0x08;
const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_RI: u8 = 0x40;
const MSR_DCD: u8 = 0x80;

/// The receive FIFO of a 16550A.
pub(crate) const FIFO_SIZE: usize = 16;

/// The baud-rate generator's input: the clock the device tree gives, divided by 16.
const BAUD_BASE: u64 = crate::CLOCK_FREQUENCY as u64 / 16;

/// A request for the character-timeout timer, for the caller to pass to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Fire [`Uart::char_timeout`] after this many nanoseconds.
    Arm(u64),
    /// Nothing is waiting any more.
    Cancel,
}

/// The UART's registers and receive FIFO. [`Uart::new`] is the state after reset.
#[derive(Debug)]
pub(crate) struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    divisor: u16,
    /// FCR's sticky bits.
    fcr: u8,
    /// The receive buffer of non-FIFO mode: the last byte received stays readable.
    rbr: u8,
    /// The receive FIFO of FIFO mode.
    rx: VecDeque<u8>,
    /// LSR bits DR, OE and BI (THRE and TEMT are always set: transmission is instant).
    lsr: u8,
    /// The THR-empty interrupt source: set when THR becomes empty (which, with immediate
    /// transmission, is every THR write) and consumed by an IIR read that reports it.
    thre_pending: bool,
    /// The character-timeout interrupt source (FIFO mode).
    timeout_pending: bool,
    /// MSR's delta bits, set by changes of the modem inputs and cleared by reading MSR.
    msr_delta: u8,
    /// Nanoseconds one character takes on the line, from the divisor and LCR.
    char_ns: u64,
    timer: Option<Timer>,
}

impl Default for Uart {
    fn default() -> Self {
        Uart::new()
    }
}

impl Uart {
    /// The state after reset, as QEMU 7.2's `serial_reset` leaves it: MCR.OUT2 set, divisor 12,
    /// everything else clear but LSR.THRE/TEMT and the modem inputs of a connected peer.
    pub(crate) fn new() -> Self {
        let mut u = Uart {
            ier: 0,
            lcr: 0,
            mcr: MCR_OUT2,
            scr: 0,
            divisor: 12,
            fcr: 0,
            rbr: 0,
            rx: VecDeque::with_capacity(FIFO_SIZE),
            lsr: 0,
            thre_pending: false,
            timeout_pending: false,
            msr_delta: 0,
            char_ns: 0,
            timer: None,
        };
        u.update_char_time();
        u
    }

    /// Back to the state after reset; the timeout timer is cancelled.
    pub(crate) fn reset(&mut self) {
        *self = Uart { timer: Some(Timer::Cancel), ..Uart::new() };
    }

    /// A guest read of the register at `offset` (below [`reg::COUNT`]). Reads have side effects
    /// (RBR pops, IIR consumes THRE, LSR clears OE and BI, MSR clears its deltas), as on the chip.
    pub(crate) fn read(&mut self, offset: u64) -> u8 {
        match offset {
            reg::RBR_THR if self.dlab() => self.divisor as u8,
            reg::RBR_THR => self.read_rbr(),
            reg::IER if self.dlab() => (self.divisor >> 8) as u8,
            reg::IER => self.ier,
            reg::IIR_FCR => {
                let id = self.interrupt_id();
                if id == IIR_THRE {
                    self.thre_pending = false;
                }
                id | if self.fifo_enabled() { IIR_FIFOS_ENABLED } else { 0 }
            }
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let lsr = self.lsr | LSR_THRE | LSR_TEMT;
                self.lsr &= !(LSR_OE | LSR_BI);
                lsr
            }
            reg::MSR => {
                let msr = self.modem_inputs() | self.msr_delta;
                self.msr_delta = 0;
                msr
            }
            reg::SCR => self.scr,
            _ => 0,
        }
    }

    /// A guest write of `value` to the register at `offset`; returns a byte to send to the host.
    pub(crate) fn write(&mut self, offset: u64, value: u8) -> Option<u8> {
        match offset {
            reg::RBR_THR if self.dlab() => {
                self.divisor = (self.divisor & 0xff00) | value as u16;
                self.update_char_time();
            }
            reg::RBR_THR => {
                // Transmission is instant, so THR is empty again at once and THRE re-arms.
                self.thre_pending = true;
                if self.mcr & MCR_LOOP == 0 {
                    return Some(value);
                }
                self.receive(value);
            }
            reg::IER if self.dlab() => {
                self.divisor = (self.divisor & 0x00ff) | (value as u16) << 8;
                self.update_char_time();
            }
            reg::IER => {
                let ier = value & IER_MASK;
                // Enabling ETBEI while THR is empty raises THRE again even if an IIR read consumed
                // it (QEMU does this; Linux's startup THRE test and Windows depend on it).
                if (ier ^ self.ier) & IER_ETBEI != 0 {
                    self.thre_pending = ier & IER_ETBEI != 0;
                }
                self.ier = ier;
            }
            reg::IIR_FCR => self.write_fcr(value),
            reg::LCR => {
                self.lcr = value;
                self.update_char_time();
            }
            reg::MCR => {
                let before = self.modem_inputs();
                self.mcr = value & MCR_MASK;
                self.note_modem_change(before);
            }
            reg::SCR => self.scr = value,
            // LSR and MSR are read-only.
            _ => {}
        }
        None
    }

    /// A byte arrives on the line (or from THR in loopback). A byte that finds no room is lost
    /// and flags an overrun: in FIFO mode the FIFO keeps its contents, without it the byte
    /// replaces the unread one (as on the chip and in QEMU).
    pub(crate) fn receive(&mut self, byte: u8) {
        if self.fifo_enabled() {
            if self.rx.len() < FIFO_SIZE {
                self.rx.push_back(byte);
            } else {
                self.lsr |= LSR_OE;
            }
            self.arm_timeout();
        } else {
            if self.lsr & LSR_DR != 0 {
                self.lsr |= LSR_OE;
            }
            self.rbr = byte;
        }
        self.lsr |= LSR_DR;
    }

    /// How many bytes the line may deliver now without an overrun, as QEMU's
    /// `serial_can_receive` counts them: in FIFO mode up to the trigger level (then one at a
    /// time), so the guest hears of data before the FIFO is full; otherwise one, when RBR is empty.
    pub(crate) fn can_receive(&self) -> usize {
        if !self.fifo_enabled() {
            return usize::from(self.lsr & LSR_DR == 0);
        }
        let (n, itl) = (self.rx.len(), self.trigger_level());
        if n >= FIFO_SIZE {
            0
        } else if n <= itl {
            itl - n
        } else {
            1
        }
    }

    /// The character-timeout timer fired: data below the trigger level has waited four
    /// character times unread.
    pub(crate) fn char_timeout(&mut self) {
        if self.fifo_enabled() && !self.rx.is_empty() {
            self.timeout_pending = true;
        }
    }

    /// The timer request made since the last call, if any.
    pub(crate) fn take_timer(&mut self) -> Option<Timer> {
        self.timer.take()
    }

    /// Whether any enabled interrupt is pending: the level of the interrupt line.
    ///
    /// MCR.OUT2 does not gate it: on the virt machine the UART's output is wired straight to the
    /// PLIC, as in QEMU, and guests written for QEMU do not all set OUT2.
    pub(crate) fn irq_pending(&self) -> bool {
        self.interrupt_id() != IIR_NONE
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    fn fifo_enabled(&self) -> bool {
        self.fcr & FCR_ENABLE != 0
    }

    /// FCR bits 7:6: 1, 4, 8 or 14 bytes.
    fn trigger_level(&self) -> usize {
        [1, 4, 8, 14][(self.fcr >> 6) as usize]
    }

    fn read_rbr(&mut self) -> u8 {
        if !self.fifo_enabled() {
            self.lsr &= !(LSR_DR | LSR_BI);
            return self.rbr;
        }
        let byte = self.rx.pop_front().unwrap_or(0);
        if self.rx.is_empty() {
            self.lsr &= !(LSR_DR | LSR_BI);
        } else {
            self.arm_timeout();
        }
        self.timeout_pending = false;
        byte
    }

    /// The highest-priority pending source, in the 16550's order.
    fn interrupt_id(&self) -> u8 {
        let rx_ready =
            self.lsr & LSR_DR != 0 && (!self.fifo_enabled() || self.rx.len() >= self.trigger_level());
        if self.ier & IER_ELSI != 0 && self.lsr & (LSR_OE | LSR_BI) != 0 {
            IIR_LINE_STATUS
        } else if self.ier & IER_ERBFI != 0 && self.timeout_pending {
            IIR_CHAR_TIMEOUT
        } else if self.ier & IER_ERBFI != 0 && rx_ready {
            IIR_RX_DATA
        } else if self.ier & IER_ETBEI != 0 && self.thre_pending {
            IIR_THRE
        } else if self.ier & IER_EDSSI != 0 && self.msr_delta != 0 {
            IIR_MODEM_STATUS
        } else {
            IIR_NONE
        }
    }

    /// MSR's upper nibble: the modem inputs.
    fn modem_inputs(&self) -> u8 {
        if self.mcr & MCR_LOOP != 0 {
            // Loopback wires the modem outputs to the inputs: RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD.
            let mut msr = 0;
            for (out, inp) in
                [(MCR_RTS, MSR_CTS), (MCR_DTR, MSR_DSR), (MCR_OUT1, MSR_RI), (MCR_OUT2, MSR_DCD)]
            {
                if self.mcr & out != 0 {
                    msr |= inp;
                }
            }
            msr
        } else {
            // A permanently connected peer: drivers that honour flow control never wait.
            MSR_DCD | MSR_DSR | MSR_CTS
        }
    }

    /// Sets MSR's delta bits for the inputs that changed since `before` (the datasheet's rule:
    /// DCTS, DDSR and DDCD on any change, TERI when RI goes from 1 to 0). Only loopback changes
    /// the inputs here; QEMU, with no modem lines on its console backends, never sets them.
    fn note_modem_change(&mut self, before: u8) {
        let after = self.modem_inputs();
        let changed = (before ^ after) >> 4;
        self.msr_delta |= changed & (MSR_DCTS | MSR_DDSR | MSR_DDCD);
        if before & MSR_RI != 0 && after & MSR_RI == 0 {
            self.msr_delta |= MSR_TERI;
        }
    }

    fn write_fcr(&mut self, value: u8) {
        let mut value = value;
        // Switching FIFO mode on or off resets both FIFOs on the chip.
        if (value ^ self.fcr) & FCR_ENABLE != 0 {
            value |= FCR_CLEAR_RX | FCR_CLEAR_TX;
        }
        if value & FCR_CLEAR_RX != 0 {
            self.rx.clear();
            self.lsr &= !(LSR_DR | LSR_BI);
            self.timeout_pending = false;
            self.timer = Some(Timer::Cancel);
        }
        if value & FCR_CLEAR_TX != 0 {
            self.thre_pending = true;
        }
        self.fcr = value & FCR_STICKY;
    }

    /// Asks for the character timeout: four character times from now (the datasheet's rule).
    fn arm_timeout(&mut self) {
        self.timer = Some(Timer::Arm(4 * self.char_ns));
    }

    /// One character's time on the line: start bit, 5 to 8 data bits, parity, 1 or 2 stop bits.
    /// A zero divisor keeps the last time, as QEMU does.
    fn update_char_time(&mut self) {
        if self.divisor == 0 {
            return;
        }
        let data = 5 + (self.lcr & 0x03) as u64;
        let parity = ((self.lcr >> 3) & 1) as u64;
        let stop = if self.lcr & 0x04 != 0 { 2 } else { 1 };
        let baud = BAUD_BASE / self.divisor as u64;
        self.char_ns = (1 + data + parity + stop) * 1_000_000_000 / baud.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a register, collecting transmitted bytes.
    fn out(u: &mut Uart, sent: &mut Vec<u8>, offset: u64, value: u8) {
        sent.extend(u.write(offset, value));
    }

    /// Drains RBR while LSR.DR is set.
    fn drain(u: &mut Uart) -> Vec<u8> {
        let mut got = Vec::new();
        while u.read(reg::LSR) & LSR_DR != 0 {
            got.push(u.read(reg::RBR_THR));
        }
        got
    }

    #[test]
    fn reset_state_is_qemus() {
        let mut u = Uart::new();
        assert_eq!(u.read(reg::LSR), 0x60);
        assert_eq!(u.read(reg::IIR_FCR), 0x01);
        assert_eq!(u.read(reg::IER), 0);
        assert_eq!(u.read(reg::LCR), 0);
        assert_eq!(u.read(reg::MCR), MCR_OUT2);
        assert_eq!(u.read(reg::MSR), 0xb0);
        assert_eq!(u.read(reg::SCR), 0);
        u.write(reg::LCR, LCR_DLAB);
        assert_eq!((u.read(reg::RBR_THR), u.read(reg::IER)), (12, 0), "divisor 12");
        assert!(!u.irq_pending());
        assert_eq!(u.take_timer(), None);
    }

    #[test]
    fn reset_brings_back_the_power_on_state_and_cancels_the_timeout() {
        let mut u = Uart::new();
        u.write(reg::IIR_FCR, 0x81);
        u.write(reg::IER, 0x0f);
        u.write(reg::LCR, 0x1b);
        u.write(reg::MCR, MCR_LOOP | 0x0f);
        u.write(reg::SCR, 0x77);
        u.receive(b'z');
        assert!(u.irq_pending());
        u.take_timer();
        u.reset();
        assert_eq!(u.take_timer(), Some(Timer::Cancel));
        let mut fresh = Uart::new();
        for off in [reg::IER, reg::IIR_FCR, reg::LCR, reg::MCR, reg::LSR, reg::MSR, reg::SCR, reg::RBR_THR] {
            assert_eq!(u.read(off), fresh.read(off), "offset {off}");
        }
        assert!(!u.irq_pending());
        assert_eq!(u.can_receive(), 1, "non-FIFO mode again");
    }

    #[test]
    fn opensbi_uart8250_init_then_putc_and_getc() {
        let mut u = Uart::new();
        let mut sent = Vec::new();
        // lib/utils/serial/uart8250.c: uart8250_init with in_freq 3686400, baud 115200 -> bdiv 2.
        out(&mut u, &mut sent, reg::IER, 0x00);
        out(&mut u, &mut sent, reg::LCR, 0x80);
        out(&mut u, &mut sent, reg::RBR_THR, 2);
        out(&mut u, &mut sent, reg::IER, 0);
        out(&mut u, &mut sent, reg::LCR, 0x03);
        out(&mut u, &mut sent, reg::IIR_FCR, 0x01);
        out(&mut u, &mut sent, reg::MCR, 0x00);
        u.read(reg::LSR);
        u.read(reg::RBR_THR);
        out(&mut u, &mut sent, reg::SCR, 0x00);
        assert!(sent.is_empty(), "divisor and control writes must not transmit");

        for &b in b"OpenSBI\n" {
            while u.read(reg::LSR) & LSR_THRE == 0 {}
            out(&mut u, &mut sent, reg::RBR_THR, b);
        }
        assert_eq!(sent, b"OpenSBI\n");
        // getc: nothing waiting, then one byte.
        assert_eq!(u.read(reg::LSR) & LSR_DR, 0);
        u.receive(b'x');
        assert_eq!(u.read(reg::LSR), 0x61);
        assert_eq!(u.read(reg::RBR_THR), b'x');
        assert_eq!(u.read(reg::LSR), 0x60);
    }

    #[test]
    fn divisor_latch_is_separate_from_data_and_ier() {
        let mut u = Uart::new();
        u.write(reg::IER, 0x05);
        u.write(reg::LCR, 0x83);
        assert_eq!(u.write(reg::RBR_THR, 0x34), None, "DLL write must not transmit");
        u.write(reg::IER, 0x12);
        assert_eq!((u.read(reg::RBR_THR), u.read(reg::IER)), (0x34, 0x12));
        u.write(reg::LCR, 0x03);
        assert_eq!(u.read(reg::IER), 0x05);
        assert_eq!(u.read(reg::LCR), 0x03);
        u.write(reg::LCR, 0x80);
        assert_eq!((u.read(reg::RBR_THR), u.read(reg::IER)), (0x34, 0x12));
    }

    #[test]
    fn linux_autoconfig_probes_identify_a_16550a() {
        let mut u = Uart::new();
        // IER read-back test: only the low nibble exists.
        u.write(reg::IER, 0);
        assert_eq!(u.read(reg::IER) & 0x0f, 0);
        u.write(reg::IER, 0x0f);
        assert_eq!(u.read(reg::IER) & 0x0f, 0x0f);
        u.write(reg::IER, 0);
        // Loopback test: MCR = LOOP | OUT2 | RTS must read back as DCD | CTS in MSR.
        u.write(reg::MCR, MCR_LOOP | 0x0a);
        assert_eq!(u.read(reg::MSR) & 0xf0, 0x90);
        u.write(reg::MCR, 0);
        // EFR probe (LCR = 0xbf, write 0 to offset 2), then FIFO detection through IIR bits 7:6.
        u.write(reg::LCR, 0xbf);
        u.write(reg::IIR_FCR, 0);
        u.write(reg::LCR, 0);
        u.write(reg::IIR_FCR, FCR_ENABLE);
        assert_eq!(u.read(reg::IIR_FCR) >> 6, 3, "FIFO bits say 16550A");
        // autoconfig_16550a: no EFR (reads at offset 2 with DLAB set must not be 0) ...
        u.write(reg::LCR, 0x80);
        assert_ne!(u.read(reg::IIR_FCR), 0);
        u.write(reg::LCR, 0xbf);
        assert_ne!(u.read(reg::IIR_FCR), 0);
        // ... not a TI16750 (IIR bit 5 never set, with or without DLAB) ...
        u.write(reg::LCR, 0);
        u.write(reg::IIR_FCR, FCR_ENABLE | 0x20);
        assert_eq!(u.read(reg::IIR_FCR) >> 5, 6);
        u.write(reg::LCR, 0x80);
        u.write(reg::IIR_FCR, FCR_ENABLE | 0x20);
        assert_eq!(u.read(reg::IIR_FCR) >> 5, 6);
        u.write(reg::LCR, 0);
        // ... and not an XScale UART (IER bit 6 does not stick).
        u.write(reg::IER, 0x40);
        assert_eq!(u.read(reg::IER) & 0x40, 0);
        // autoconfig_8250's scratch register test.
        for v in [0xa5, 0x5a] {
            u.write(reg::SCR, v);
            assert_eq!(u.read(reg::SCR), v);
        }
        // serial8250_do_startup's "no UART here" check.
        assert_ne!(u.read(reg::LSR), 0xff);
    }

    #[test]
    fn fcr_07_enables_fifos_and_fcr_00_disables_them() {
        let mut u = Uart::new();
        assert_eq!(u.read(reg::IIR_FCR) & 0xc0, 0);
        u.write(reg::IIR_FCR, 0x07);
        assert_eq!(u.read(reg::IIR_FCR), 0xc1);
        u.write(reg::IIR_FCR, 0x00);
        assert_eq!(u.read(reg::IIR_FCR), 0x01);
    }

    #[test]
    fn fcr_clears_the_receive_fifo() {
        let mut u = Uart::new();
        u.write(reg::IIR_FCR, 0x01);
        u.receive(1);
        u.receive(2);
        u.write(reg::IIR_FCR, 0x01 | FCR_CLEAR_TX);
        assert_eq!(u.read(reg::LSR) & LSR_DR, LSR_DR, "clearing TX leaves RX alone");
        u.take_timer();
        u.write(reg::IIR_FCR, 0x01 | FCR_CLEAR_RX);
        assert_eq!(u.read(reg::LSR) & LSR_DR, 0);
        assert_eq!(u.take_timer(), Some(Timer::Cancel), "nothing left to time out");
        // Toggling FIFO mode also resets the FIFOs.
        u.receive(3);
        u.write(reg::IIR_FCR, 0x00);
        assert_eq!(u.read(reg::LSR) & LSR_DR, 0);
    }

    #[test]
    fn the_fifo_holds_sixteen_and_an_extra_byte_is_an_overrun_that_keeps_the_fifo() {
        let mut u = Uart::new();
        u.write(reg::IIR_FCR, 0x01);
        for b in 0..16 {
            u.receive(b);
        }
        assert_eq!(u.can_receive(), 0);
        u.write(reg::IER, IER_ELSI);
        u.receive(0xee);
        assert_eq!(u.read(reg::IIR_FCR), 0xc6, "line status interrupt");
        assert_eq!(u.read(reg::LSR), LSR_THRE | LSR_TEMT | LSR_DR | LSR_OE);
        assert_eq!(u.read(reg::LSR), LSR_THRE | LSR_TEMT | LSR_DR, "reading LSR clears OE");
        assert_eq!(u.read(reg::IIR_FCR), 0xc1);
        assert_eq!(drain(&mut u), (0..16).collect::<Vec<u8>>(), "the overrun byte is lost");
        assert_eq!(u.read(reg::RBR_THR), 0, "an empty FIFO reads 0");
    }

    #[test]
    fn without_fifos_rbr_holds_one_byte_and_a_second_overwrites_it() {
        let mut u = Uart::new();
        assert_eq!(u.can_receive(), 1);
        u.receive(b'a');
        assert_eq!(u.can_receive(), 0);
        u.receive(b'b');
        assert_eq!(u.read(reg::LSR), LSR_THRE | LSR_TEMT | LSR_DR | LSR_OE);
        assert_eq!(u.read(reg::RBR_THR), b'b');
        assert_eq!(u.read(reg::LSR) & LSR_DR, 0);
        assert_eq!(u.read(reg::RBR_THR), b'b', "RBR keeps the last byte");
        assert_eq!(u.take_timer(), None, "no character timeout without FIFOs");
    }

    #[test]
    fn trigger_levels_decide_when_received_data_interrupts() {
        for (fcr, level) in [(0x01, 1), (0x41, 4), (0x81, 8), (0xc1, 14)] {
            let mut u = Uart::new();
            u.write(reg::IIR_FCR, fcr);
            u.write(reg::IER, IER_ERBFI);
            assert_eq!(u.can_receive(), level, "FCR {fcr:#x}: the host may fill up to the level");
            for i in 1..level {
                u.receive(b'.');
                assert!(!u.irq_pending(), "FCR {fcr:#x}: {i} bytes are below the level");
                assert_eq!(u.read(reg::LSR) & LSR_DR, LSR_DR, "but DR shows them");
            }
            u.receive(b'!');
            assert_eq!(u.read(reg::IIR_FCR), 0xc4, "FCR {fcr:#x}");
            assert_eq!(u.can_receive(), 0, "at the level: wait for the guest");
            u.receive(b'+');
            assert_eq!(u.can_receive(), 1, "past the level: one at a time");
            u.read(reg::RBR_THR);
            u.read(reg::RBR_THR);
            assert!(!u.irq_pending(), "FCR {fcr:#x}: below the level again");
        }
    }

    #[test]
    fn data_below_the_level_raises_a_character_timeout_after_four_characters() {
        let mut u = Uart::new();
        // 115200 8N1: ten bits at 3686400 / 16 / 2 baud.
        u.write(reg::LCR, 0x83);
        u.write(reg::RBR_THR, 2);
        u.write(reg::LCR, 0x03);
        u.write(reg::IIR_FCR, 0x81);
        u.write(reg::IER, IER_ERBFI);
        let four_chars = 4 * (10 * 1_000_000_000 / 115_200);
        u.receive(b'h');
        u.receive(b'i');
        assert_eq!(u.take_timer(), Some(Timer::Arm(four_chars)));
        assert!(!u.irq_pending());
        u.char_timeout();
        assert_eq!(u.read(reg::IIR_FCR), 0xcc, "character timeout");
        assert_eq!(u.read(reg::IIR_FCR), 0xcc, "reading IIR does not clear it");
        assert_eq!(u.read(reg::RBR_THR), b'h');
        assert!(!u.irq_pending(), "reading RBR clears it");
        assert_eq!(u.take_timer(), Some(Timer::Arm(four_chars)), "one byte left: timed again");
        assert_eq!(u.read(reg::RBR_THR), b'i');
        assert_eq!(u.take_timer(), None);
        u.char_timeout();
        assert!(!u.irq_pending(), "an empty FIFO does not time out");
        // 9600 7E2: 1 + 7 + 1 + 2 bits.
        u.write(reg::LCR, 0x80 | 0x1e);
        u.write(reg::RBR_THR, 24);
        u.write(reg::LCR, 0x1e);
        u.receive(b'x');
        assert_eq!(u.take_timer(), Some(Timer::Arm(4 * (11 * 1_000_000_000 / 9_600))));
    }

    #[test]
    fn interrupt_sources_are_reported_in_priority_order() {
        let mut u = Uart::new();
        u.write(reg::IIR_FCR, 0x01);
        u.write(reg::MCR, MCR_LOOP);
        u.write(reg::MCR, MCR_LOOP | MCR_RTS);
        u.write(reg::IER, 0x0f);
        for _ in 0..17 {
            u.receive(b'.');
        }
        u.char_timeout();
        let mut ids = Vec::new();
        loop {
            let id = u.read(reg::IIR_FCR) & 0x0f;
            ids.push(id);
            match id {
                IIR_LINE_STATUS => drop(u.read(reg::LSR)),
                IIR_CHAR_TIMEOUT | IIR_RX_DATA => drop(drain(&mut u)),
                IIR_MODEM_STATUS => drop(u.read(reg::MSR)),
                _ => {}
            }
            if id == IIR_NONE {
                break;
            }
        }
        // THRE is consumed by the IIR read that reports it.
        assert_eq!(ids, [IIR_LINE_STATUS, IIR_CHAR_TIMEOUT, IIR_THRE, IIR_MODEM_STATUS, IIR_NONE]);
    }

    #[test]
    fn loopback_modem_changes_set_msr_deltas_and_the_modem_status_interrupt() {
        let mut u = Uart::new();
        u.write(reg::MCR, MCR_LOOP);
        // Entering loopback with OUT2 off drops DCD, DSR and CTS (the outputs are all off).
        assert_eq!(u.read(reg::MSR), MSR_DCTS | MSR_DDSR | MSR_DDCD);
        assert_eq!(u.read(reg::MSR), 0, "reading MSR clears the deltas");
        u.write(reg::IER, IER_EDSSI);
        assert!(!u.irq_pending());
        u.write(reg::MCR, MCR_LOOP | MCR_RTS | MCR_OUT1);
        assert_eq!(u.read(reg::IIR_FCR), IIR_MODEM_STATUS);
        assert_eq!(u.read(reg::MSR), MSR_CTS | MSR_RI | MSR_DCTS, "RI rising is no TERI");
        assert!(!u.irq_pending());
        u.write(reg::MCR, MCR_LOOP | MCR_RTS);
        assert_eq!(u.read(reg::MSR), MSR_CTS | MSR_TERI, "RI falling sets TERI");
        u.write(reg::MCR, MCR_LOOP | MCR_RTS);
        assert_eq!(u.read(reg::MSR), MSR_CTS, "no change, no delta");
    }

    #[test]
    fn loopback_sends_thr_to_rbr_not_to_the_host() {
        let mut u = Uart::new();
        u.write(reg::MCR, MCR_LOOP);
        assert_eq!(u.write(reg::RBR_THR, b'Z'), None);
        assert_eq!(u.read(reg::LSR), 0x61);
        assert_eq!(u.read(reg::RBR_THR), b'Z');
        u.write(reg::MCR, MCR_DTR | MCR_OUT1);
        u.read(reg::MSR);
        assert_eq!(u.read(reg::MSR), 0xb0, "outside loopback MSR shows a connected peer");
        u.write(reg::MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
        assert_eq!(u.read(reg::MSR) & 0xf0, MSR_DSR | MSR_RI);
        assert_eq!(u.write(reg::MCR, 0), None);
        assert_eq!(u.write(reg::RBR_THR, b'Q'), Some(b'Q'));
    }

    #[test]
    fn mcr_keeps_five_bits() {
        let mut u = Uart::new();
        u.write(reg::MCR, 0xff);
        assert_eq!(u.read(reg::MCR), 0x1f);
    }

    #[test]
    fn thre_interrupt_is_consumed_by_an_iir_read_and_rearmed_by_thr() {
        let mut u = Uart::new();
        u.write(reg::IER, IER_ETBEI);
        assert!(u.irq_pending());
        assert_eq!(u.read(reg::IIR_FCR), 0x02);
        assert!(!u.irq_pending());
        assert_eq!(u.read(reg::IIR_FCR), 0x01, "the THRE source was consumed");
        u.write(reg::RBR_THR, b'a');
        assert_eq!(u.read(reg::IIR_FCR), 0x02, "writing THR re-arms THRE");
        // Linux's startup test: re-enabling ETBEI raises THRE again.
        u.write(reg::IER, 0);
        u.write(reg::IER, IER_ETBEI);
        assert_eq!(u.read(reg::IIR_FCR), 0x02);
        // Disabling ETBEI drops the source; it stays off until re-enabled or THR is written.
        u.write(reg::RBR_THR, b'b');
        u.write(reg::IER, 0);
        assert!(!u.irq_pending());
        // Clearing the transmit FIFO empties THR: THRE again.
        u.write(reg::IER, IER_ETBEI);
        u.read(reg::IIR_FCR);
        u.write(reg::IIR_FCR, FCR_CLEAR_TX);
        assert_eq!(u.read(reg::IIR_FCR), 0x02);
    }

    #[test]
    fn received_data_outranks_thre_and_needs_erbfi() {
        let mut u = Uart::new();
        u.receive(b'k');
        assert!(!u.irq_pending(), "ERBFI is off");
        u.write(reg::IER, IER_ERBFI | IER_ETBEI);
        assert_eq!(u.read(reg::IIR_FCR), 0x04);
        assert_eq!(u.read(reg::IIR_FCR), 0x04, "reading IIR does not clear received data");
        assert_eq!(u.read(reg::RBR_THR), b'k');
        assert_eq!(u.read(reg::IIR_FCR), 0x02, "THRE shows once data is drained");
        assert_eq!(u.read(reg::IIR_FCR), 0x01);
    }

    #[test]
    fn lsr_and_msr_ignore_writes() {
        let mut u = Uart::new();
        for off in [reg::LSR, reg::MSR] {
            assert_eq!(u.write(off, 0xff), None);
        }
        assert_eq!(u.read(reg::LSR), 0x60);
        assert_eq!(u.read(reg::MSR), 0xb0);
    }
}
