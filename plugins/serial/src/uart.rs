//! The 16550A register model: what the guest sees at each offset, with no host I/O.
//!
//! [`Uart::write`] hands back the byte to transmit and the caller sends it to the host; received
//! bytes come in through [`Uart::receive`]. Keeping I/O out lets the tests drive every
//! guest-visible behaviour the way real drivers do.

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
}

const IER_ERBFI: u8 = 0x01;
const IER_ETBEI: u8 = 0x02;
const IER_ELSI: u8 = 0x04;
/// Only the four standard enables exist; Linux probes bit 6 (XScale UUE) and must see it stay clear.
const IER_MASK: u8 = 0x0f;

const IIR_NONE: u8 = 0x01;
const IIR_THRE: u8 = 0x02;
const IIR_RX_DATA: u8 = 0x04;
const IIR_LINE_STATUS: u8 = 0x06;
const IIR_FIFOS_ENABLED: u8 = 0xc0;

const FCR_ENABLE: u8 = 0x01;
const FCR_CLEAR_RX: u8 = 0x02;
const FCR_CLEAR_TX: u8 = 0x04;

const LCR_DLAB: u8 = 0x80;

const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;

const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_RI: u8 = 0x40;
const MSR_DCD: u8 = 0x80;

/// How many received bytes the device holds before input waits (stdin) or overruns (loopback).
///
/// A real 16550A holds 16; more is invisible to drivers, which drain while LSR.DR is set, and it
/// keeps pasted input from being lost while the guest is busy.
pub(crate) const RX_CAPACITY: usize = 4096;

/// The UART's registers and receive queue. The default is the chip after reset.
#[derive(Debug, Default)]
pub(crate) struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    divisor: u16,
    fifo_enabled: bool,
    /// The THR-empty interrupt source: set when THR becomes empty (which, with immediate
    /// transmission, is every THR write) and consumed by an IIR read that reports it.
    thre_pending: bool,
    overrun: bool,
    rx: VecDeque<u8>,
}

impl Uart {
    /// A guest read of the register at `offset`. Reads have side effects (RBR pops, IIR consumes
    /// THRE, LSR clears overrun), as on the chip.
    pub(crate) fn read(&mut self, offset: u64) -> u8 {
        match offset {
            reg::RBR_THR if self.dlab() => self.divisor as u8,
            reg::RBR_THR => self.rx.pop_front().unwrap_or(0),
            reg::IER if self.dlab() => (self.divisor >> 8) as u8,
            reg::IER => self.ier,
            reg::IIR_FCR => {
                let id = self.interrupt_id();
                if id == IIR_THRE {
                    self.thre_pending = false;
                }
                id | if self.fifo_enabled { IIR_FIFOS_ENABLED } else { 0 }
            }
            reg::LCR => self.lcr,
            reg::MCR => self.mcr,
            reg::LSR => {
                let lsr = self.lsr();
                self.overrun = false;
                lsr
            }
            reg::MSR => self.msr(),
            reg::SCR => self.scr,
            _ => 0,
        }
    }

    /// A guest write of `value` to the register at `offset`; returns a byte to send to the host.
    pub(crate) fn write(&mut self, offset: u64, value: u8) -> Option<u8> {
        match offset {
            reg::RBR_THR if self.dlab() => self.divisor = (self.divisor & 0xff00) | value as u16,
            reg::RBR_THR => {
                // Transmission is instant, so THR is empty again at once and THRE re-arms.
                self.thre_pending = true;
                if self.mcr & MCR_LOOP == 0 {
                    return Some(value);
                }
                self.receive(value);
            }
            reg::IER if self.dlab() => self.divisor = (self.divisor & 0x00ff) | (value as u16) << 8,
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
            reg::LCR => self.lcr = value,
            reg::MCR => self.mcr = value & MCR_MASK,
            reg::SCR => self.scr = value,
            // LSR and MSR are read-only; the rest of the window is unused.
            _ => {}
        }
        None
    }

    /// Queues a received byte. Returns `false` (and flags an overrun) when the queue is full.
    pub(crate) fn receive(&mut self, byte: u8) -> bool {
        if self.rx_full() {
            self.overrun = true;
            return false;
        }
        self.rx.push_back(byte);
        true
    }

    /// Whether another received byte would overrun.
    pub(crate) fn rx_full(&self) -> bool {
        self.rx.len() >= RX_CAPACITY
    }

    /// Received bytes waiting for the guest.
    pub(crate) fn rx_len(&self) -> usize {
        self.rx.len()
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

    /// The highest-priority pending source, in the 16550's order.
    fn interrupt_id(&self) -> u8 {
        if self.ier & IER_ELSI != 0 && self.overrun {
            IIR_LINE_STATUS
        } else if self.ier & IER_ERBFI != 0 && !self.rx.is_empty() {
            IIR_RX_DATA
        } else if self.ier & IER_ETBEI != 0 && self.thre_pending {
            IIR_THRE
        } else {
            IIR_NONE
        }
    }

    fn lsr(&self) -> u8 {
        let mut lsr = LSR_THRE | LSR_TEMT;
        if !self.rx.is_empty() {
            lsr |= LSR_DR;
        }
        if self.overrun {
            lsr |= LSR_OE;
        }
        lsr
    }

    fn msr(&self) -> u8 {
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

    fn write_fcr(&mut self, value: u8) {
        let enable = value & FCR_ENABLE != 0;
        let mut clear = value & (FCR_CLEAR_RX | FCR_CLEAR_TX);
        // Switching FIFO mode on or off resets both FIFOs on the chip.
        if enable != self.fifo_enabled {
            clear |= FCR_CLEAR_RX | FCR_CLEAR_TX;
        }
        if clear & FCR_CLEAR_RX != 0 {
            self.rx.clear();
        }
        if clear & FCR_CLEAR_TX != 0 {
            self.thre_pending = true;
        }
        self.fifo_enabled = enable;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a register, collecting transmitted bytes.
    fn out(u: &mut Uart, sent: &mut Vec<u8>, offset: u64, value: u8) {
        sent.extend(u.write(offset, value));
    }

    #[test]
    fn reset_state_reports_an_empty_transmitter_and_no_interrupt() {
        let mut u = Uart::default();
        assert_eq!(u.read(reg::LSR), 0x60);
        assert_eq!(u.read(reg::IIR_FCR), 0x01);
        assert_eq!(u.read(reg::IER), 0);
        assert_eq!(u.read(reg::MSR), 0xb0);
        assert!(!u.irq_pending());
    }

    #[test]
    fn opensbi_uart8250_init_then_putc_and_getc() {
        let mut u = Uart::default();
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
        let mut u = Uart::default();
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
        let mut u = Uart::default();
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
        let mut u = Uart::default();
        assert_eq!(u.read(reg::IIR_FCR) & 0xc0, 0);
        u.write(reg::IIR_FCR, 0x07);
        assert_eq!(u.read(reg::IIR_FCR), 0xc1);
        u.write(reg::IIR_FCR, 0x00);
        assert_eq!(u.read(reg::IIR_FCR), 0x01);
    }

    #[test]
    fn fcr_clears_the_receive_fifo() {
        let mut u = Uart::default();
        u.write(reg::IIR_FCR, 0x01);
        u.receive(1);
        u.receive(2);
        u.write(reg::IIR_FCR, 0x01 | FCR_CLEAR_TX);
        assert_eq!(u.rx_len(), 2, "clearing TX leaves RX alone");
        u.write(reg::IIR_FCR, 0x01 | FCR_CLEAR_RX);
        assert_eq!(u.rx_len(), 0);
        assert_eq!(u.read(reg::LSR) & LSR_DR, 0);
        // Toggling FIFO mode also resets the FIFOs.
        u.receive(3);
        u.write(reg::IIR_FCR, 0x00);
        assert_eq!(u.rx_len(), 0);
    }

    #[test]
    fn loopback_sends_thr_to_rbr_not_to_the_host() {
        let mut u = Uart::default();
        u.write(reg::MCR, MCR_LOOP);
        assert_eq!(u.write(reg::RBR_THR, b'Z'), None);
        assert_eq!(u.read(reg::LSR), 0x61);
        assert_eq!(u.read(reg::RBR_THR), b'Z');
        u.write(reg::MCR, MCR_DTR | MCR_OUT1);
        assert_eq!(u.read(reg::MSR), 0xb0, "outside loopback MSR shows a connected peer");
        u.write(reg::MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
        assert_eq!(u.read(reg::MSR), MSR_DSR | MSR_RI);
        assert_eq!(u.write(reg::MCR, 0), None);
        assert_eq!(u.write(reg::RBR_THR, b'Q'), Some(b'Q'));
    }

    #[test]
    fn mcr_keeps_five_bits() {
        let mut u = Uart::default();
        u.write(reg::MCR, 0xff);
        assert_eq!(u.read(reg::MCR), 0x1f);
    }

    #[test]
    fn thre_interrupt_is_consumed_by_an_iir_read_and_rearmed_by_thr() {
        let mut u = Uart::default();
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
    }

    #[test]
    fn received_data_outranks_thre_and_needs_erbfi() {
        let mut u = Uart::default();
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
    fn overrun_sets_lsr_oe_until_lsr_is_read() {
        let mut u = Uart::default();
        for i in 0..RX_CAPACITY {
            assert!(u.receive(if i == 0 { b'A' } else { b'.' }));
        }
        assert!(u.rx_full());
        u.write(reg::IER, IER_ELSI);
        u.write(reg::MCR, MCR_LOOP);
        u.write(reg::RBR_THR, 0xee);
        assert_eq!(u.read(reg::IIR_FCR), 0x06);
        assert_eq!(u.read(reg::LSR), LSR_THRE | LSR_TEMT | LSR_DR | LSR_OE);
        assert_eq!(u.read(reg::LSR), LSR_THRE | LSR_TEMT | LSR_DR);
        assert_eq!(u.read(reg::IIR_FCR), 0x01);
        assert_eq!(u.read(reg::RBR_THR), b'A', "queued bytes survive; the overrun byte is lost");
    }

    #[test]
    fn read_only_and_unused_offsets_ignore_writes() {
        let mut u = Uart::default();
        for off in [reg::LSR, reg::MSR, 8, 0x7f, 0xff, 0x1000] {
            assert_eq!(u.write(off, 0xff), None);
        }
        assert_eq!(u.read(reg::LSR), 0x60);
        assert_eq!(u.read(reg::MSR), 0xb0);
        for off in [8, 0x7f, 0xff, 0x1000] {
            assert_eq!(u.read(off), 0);
        }
    }

    #[test]
    fn reading_an_empty_rbr_gives_zero() {
        let mut u = Uart::default();
        assert_eq!(u.read(reg::RBR_THR), 0);
    }
}
