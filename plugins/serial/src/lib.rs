//! The `serial` device plugin: a 16550A UART, the guest console of vmhost's `virt` machine.
//!
//! It behaves enough like the chip that unmodified drivers work (Linux's 8250, OpenSBI's
//! uart8250, U-Boot's ns16550, bare-metal code polling LSR.THRE). Transmission is instant: a byte
//! written to THR goes straight to the configured output, so THR always reads as empty. Received
//! bytes, from the host's stdin when configured, wait in a queue and raise the receive interrupt.
//! The interrupt line follows "any enabled interrupt pending", as QEMU's `ns16550a` does.
//!
//! Configuration (the device's table in `vm.toml`; every key is optional):
//!
//! ```toml
//! output = "stdout"              # default; also "stderr", "none", or { file = "serial.log" } (append)
//! input = "none"                 # default; "stdin" reads the host's stdin on a background thread
//! ```
//!
//! See [`SerialConfig`] for the details.

mod config;
mod input;
mod output;
mod shared;
mod uart;

pub use config::{InputConfig, OutputConfig, SerialConfig};

use output::Output;
use shared::Shared;
use std::path::PathBuf;
use std::sync::Arc;
use vm_plugin_api::{
    Component, Device, DeviceContext, DevicePlugin, DeviceType, ErrorKind, Events, FdtNode, FdtValue,
    IoRegion, PluginDescription, PluginModRef, VmError, VmEvent,
};

/// Size of the register window the device claims (QEMU virt's UART slot).
pub const REGION_SIZE: u64 = 0x100;

/// The UART input clock the guest is told about, as on QEMU's virt machine (1.8432 MHz × 2).
pub const CLOCK_FREQUENCY: u32 = 3_686_400;

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
        let shared = Arc::new(Shared::new(ctx.irq.into_option(), events.clone()));
        let id = ctx.id.to_string();
        let serial = Serial { id, config, config_dir, output, shared, events };
        if serial.config.input == InputConfig::Stdin {
            input::claim(&serial.id, &serial.shared)?;
        }
        Ok(serial)
    }
}

impl Serial {
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

    fn io_regions(&self) -> Vec<IoRegion> {
        vec![IoRegion::mmio(0, REGION_SIZE)]
    }

    fn fdt_node(&self) -> FdtNode {
        FdtNode::new("serial", &["ns16550a"]).prop("clock-frequency", FdtValue::U32(CLOCK_FREQUENCY))
    }

    /// Registers are bytes; a wider access reads the register at `offset`, zero-extended.
    fn read(&mut self, offset: u64, _size: u8) -> Result<u64, VmError> {
        Ok(self.shared.with_uart(|u| u.read(offset)) as u64)
    }

    /// Registers are bytes; a wider access writes the low byte of `value` to the register at `offset`.
    fn write(&mut self, offset: u64, value: u64, _size: u8) -> Result<(), VmError> {
        // The byte leaves after the state lock is released: a slow console must not hold up input.
        match self.shared.with_uart(|u| u.write(offset, value as u8)) {
            Some(byte) => self.transmit(byte),
            None => Ok(()),
        }
    }
}

impl Component for Serial {
    fn stop(&mut self) -> Result<(), VmError> {
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
        match (self.config.input, config.input) {
            (InputConfig::None, InputConfig::Stdin) => input::claim(&self.id, &self.shared)?,
            (InputConfig::Stdin, InputConfig::None) => input::release(&self.shared),
            _ => {}
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
        if self.config.input == InputConfig::Stdin {
            input::release(&self.shared);
        }
        let _ = self.output.flush();
    }
}

#[cfg(test)]
mod tests;
