//! The `serial` device plugin: a 16550A UART, the guest console of vmhost's `virt` machine.
//!
//! It behaves as QEMU 7.2's `ns16550a` so that unmodified drivers work (Linux's 8250, OpenSBI's
//! uart8250, U-Boot's ns16550, bare-metal code polling LSR.THRE): the 16-byte receive FIFO with
//! its trigger levels and character timeout (a host timer), the IIR priorities, LSR, loopback,
//! MSR and SCR. Transmission is instant: a byte written to THR goes straight to the configured
//! output, so THR always reads as empty. The interrupt line follows "any enabled interrupt
//! pending"; the host routes it to the PLIC.
//!
//! Input comes from the host's stdin by default, for the first serial device (the console), as
//! with QEMU's `-nographic`: a terminal is put in raw mode while the VM runs and restored when
//! it stops (and at process exit); a pipe is read as it is, and its end is not an error. Ctrl-A
//! X stops the VM, Ctrl-A H lists the keys, Ctrl-A A sends a Ctrl-A (see `escape`).
//!
//! Configuration (the device's table in `vm.toml`; every key is optional):
//!
//! ```toml
//! output = "stdout"              # default; also "stderr", "none", or { file = "serial.log" } (append)
//! input = "auto"                 # default: stdin unless another serial device has it; "stdin", "none"
//! ```
//!
//! See [`SerialConfig`] for the details.

mod config;
mod escape;
mod input;
mod output;
mod shared;
mod term;
mod uart;

pub use config::{InputConfig, OutputConfig, SerialConfig};

use output::Output;
use shared::{Shared, TIMEOUT_TOKEN};
use std::path::PathBuf;
use std::sync::Arc;
use uart::reg;
use vm_plugin_api::{
    Component, Device, DeviceContext, DevicePlugin, DeviceType, ErrorKind, Events, FdtNode, FdtValue,
    IoRegion, PluginDescription, PluginModRef, VmError, VmEvent,
};

/// Size of the register window the device claims: QEMU virt's UART slot, whose `reg` the device
/// tree gives. The eight registers sit at its start; the rest answers with a bus fault.
pub const REGION_SIZE: u64 = 0x100;

/// The UART input clock the guest is told about, as on QEMU's virt machine (1.8432 MHz × 2).
pub const CLOCK_FREQUENCY: u32 = 3_686_400;

/// The descriptor whose terminal goes raw. Unit tests never touch the terminal they run in.
const STDIN_FD: i32 = if cfg!(test) { -1 } else { 0 };

/// The plugin's root module, for the host's built-ins and the `.so` shim.
pub fn module() -> PluginModRef {
    vm_plugin_api::device_module::<Serial>()
}

/// A 16550A UART.
pub struct Serial {
    id: String,
    config: SerialConfig,
    /// Relative output paths are taken from here (the vm.toml's directory).
    config_dir: PathBuf,
    output: Output,
    shared: Arc<Shared>,
    events: Events,
    /// Whether this device receives stdin.
    has_stdin: bool,
    /// Between `start` and `stop`.
    running: bool,
    /// Whether this device put the terminal in raw mode.
    raw: bool,
}

impl PluginDescription for Serial {
    const NAME: &'static str = "serial";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "16550A UART (ns16550a): console output to stdout or a file, input from stdin";
}

impl DevicePlugin for Serial {
    fn create(ctx: DeviceContext, events: Events) -> Result<Self, VmError> {
        let config = SerialConfig::from_toml(&ctx.config)?;
        let config_dir = PathBuf::from(ctx.config_dir.as_str());
        let output = Output::open(&config.output, &config_dir)?;
        let shared = Arc::new(Shared::new(ctx.irq.into_option(), ctx.host, events.clone()));
        let id = ctx.id.to_string();
        let input = config.input;
        let mut serial = Serial {
            id,
            config,
            config_dir,
            output,
            shared,
            events,
            has_stdin: false,
            running: false,
            raw: false,
        };
        serial.attach(input)?;
        Ok(serial)
    }
}

impl Serial {
    /// Takes stdin as `input` says, or lets it go; the terminal follows while running.
    fn attach(&mut self, input: InputConfig) -> Result<(), VmError> {
        self.has_stdin = match input {
            InputConfig::Stdin => input::claim(&self.id, &self.shared).map(|()| true)?,
            InputConfig::Auto => input::try_claim(&self.id, &self.shared)?.is_ok(),
            InputConfig::None => {
                input::release(&self.shared);
                false
            }
        };
        self.sync_terminal();
        Ok(())
    }

    /// Raw mode while running with stdin, the saved settings otherwise.
    fn sync_terminal(&mut self) {
        let want = self.running && self.has_stdin;
        if want && !self.raw {
            match term::enter_raw(STDIN_FD) {
                Ok(raw) => self.raw = raw,
                // The console still works, line by line: not a reason to stop the VM.
                Err(e) => eprintln!(
                    "vmhost: serial device '{}': cannot put the terminal in raw mode ({e}); input stays line-buffered",
                    self.id
                ),
            }
        } else if !want && self.raw {
            term::restore();
            self.raw = false;
        }
    }

    /// A bus fault for the offsets past the eight registers: QEMU maps only those 8 bytes, so
    /// the rest of the slot faults there too.
    fn check(&self, offset: u64) -> Result<(), VmError> {
        if offset < reg::COUNT {
            return Ok(());
        }
        Err(VmError::bus_fault(format!("serial device '{}': no register at offset {offset:#x}", self.id)))
    }

    /// Sends a byte to the output. A failure stops the VM: a console whose reader has gone (a
    /// closed pipe) or whose disk is full would otherwise swallow the guest's output unseen.
    fn transmit(&mut self, byte: u8) -> Result<(), VmError> {
        self.output.write_byte(byte).map_err(|e| {
            let msg = if e.kind() == std::io::ErrorKind::BrokenPipe {
                format!("serial device '{}': the console's reader has gone ({e}); stopping the VM", self.id)
            } else {
                format!("serial device '{}': writing console output failed ({e}); stopping the VM", self.id)
            };
            self.events.publish(&VmEvent::ErrorOccurred(msg.as_str().into()));
            VmError::new(ErrorKind::Io, msg)
        })
    }
}

impl Device for Serial {
    fn device_type(&self) -> DeviceType {
        DeviceType::Serial
    }

    fn fdt_node(&self) -> FdtNode {
        FdtNode::new("serial", &["ns16550a"]).prop("clock-frequency", FdtValue::U32(CLOCK_FREQUENCY))
    }

    /// QEMU's `serial_mm_ops` take any aligned access of 1 to 8 bytes (`valid.max_access_size
    /// = 8`, no `unaligned`), which is what `IoRegion::mmio` declares.
    fn io_regions(&self) -> Vec<IoRegion> {
        vec![IoRegion::mmio(0, REGION_SIZE)]
    }

    /// Registers are bytes; a wider access reads the register at `offset`, zero-extended.
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, VmError> {
        self.check(offset)?;
        Ok(self.shared.with_uart(|u| u.read(offset)) as u64)
    }

    /// Registers are bytes; a wider access writes the low byte of `value` to the register at `offset`.
    fn write(&mut self, offset: u64, value: u64, _size: u8) -> Result<(), VmError> {
        self.check(offset)?;
        // The byte leaves after the state lock is released: a slow console must not hold up input.
        match self.shared.with_uart(|u| u.write(offset, value as u8)) {
            Some(byte) => self.transmit(byte),
            None => Ok(()),
        }
    }

    fn timer(&mut self, token: u64) -> Result<(), VmError> {
        if token == TIMEOUT_TOKEN {
            self.shared.with_uart(|u| u.char_timeout());
        }
        Ok(())
    }

    /// The registers go back to their reset values; input waiting on the host side stays, as
    /// typed-ahead keys do in QEMU.
    fn reset(&mut self) -> Result<(), VmError> {
        self.shared.with_uart(|u| u.reset());
        Ok(())
    }
}

impl Component for Serial {
    fn start(&mut self) -> Result<(), VmError> {
        self.running = true;
        self.sync_terminal();
        Ok(())
    }

    fn stop(&mut self) -> Result<(), VmError> {
        self.running = false;
        self.sync_terminal();
        self.output.flush().map_err(|e| {
            VmError::new(ErrorKind::Io, format!("serial device '{}': flushing output failed: {e}", self.id))
        })
    }

    fn update_config(&mut self, toml: &str) -> Result<(), VmError> {
        let config = SerialConfig::from_toml(toml)?;
        let output = if config.output != self.config.output {
            Some(Output::open(&config.output, &self.config_dir)?)
        } else {
            None
        };
        if config.input != self.config.input {
            self.attach(config.input)?;
        }
        if let Some(output) = output {
            // Best effort: the old output is being replaced, and a flush error must not undo the change.
            let _ = self.output.flush();
            self.output = output;
        }
        self.config = config;
        Ok(())
    }

    fn get_config(&self) -> String {
        self.config.to_toml()
    }

    fn validate_config(&self, toml: &str) -> Result<(), VmError> {
        SerialConfig::from_toml(toml).map(drop)
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        self.running = false;
        if self.has_stdin {
            input::release(&self.shared);
        }
        self.sync_terminal();
        let _ = self.output.flush();
    }
}

#[cfg(test)]
mod tests;
