//! A device plugin's DMA with a guest-chosen address and length: every hostile range is refused
//! with an error the device gets back, the host allocates nothing for it, and it stays up.

use std::path::PathBuf;
use vm_host::{Vm, VmConfig};
use vm_tests::*;

const BASE: u64 = 0x1000_2000;

fn dma_device() -> PathBuf {
    build_out_of_tree("dma", "tests/fixtures/dma-device", None)
}

/// Programs the device's address and length, then starts a transfer with a write to `go`.
fn transfer(vm: &Vm, go: u64, addr: u64, len: u64) -> Result<u64, String> {
    let bus = &vm.machine().bus;
    bus.write(BASE, 8, addr).unwrap();
    bus.write(BASE + 8, 8, len).unwrap();
    bus.write(BASE + go, 8, 1).map_err(|e| e.into_vm_error().message().to_string())?;
    Ok(bus.read(BASE + 0x18, 8).unwrap())
}

#[test]
fn dma_with_hostile_lengths_is_refused_and_the_host_stays_up() {
    let dir = scratch("dma-lengths");
    let dev = format!(
        "{UART}\n[[device]]\nid = \"dma0\"\nplugin = \"{}\"\nbase = {BASE:#x}\n",
        dma_device().display()
    );
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &dev);
    let vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    let (read, write) = (0x10, 0x20);
    let ram =
        "not inside RAM (0x80000000..0x84000000), and device space is reached at most 4096 bytes at a time";

    for (addr, len) in
        [(0x8000_0000, 1u64 << 40), (0x8000_0000, u64::MAX), (0, u64::MAX), (0x8400_0000, 1 << 30)]
    {
        let e = transfer(&vm, read, addr, len).unwrap_err();
        assert!(e.ends_with(&format!("cannot read {len} bytes at guest address {addr:#x}: {ram}")), "{e}");
    }
    let e = transfer(&vm, read, u64::MAX - 3, 8).unwrap_err();
    assert!(e.ends_with("cannot read 8 bytes at guest address 0xfffffffffffffffc: the range wraps past the top of the address space"), "{e}");
    let e = transfer(&vm, write, u64::MAX, 2).unwrap_err();
    assert!(e.ends_with("cannot write 2 bytes at guest address 0xffffffffffffffff: the range wraps past the top of the address space"), "{e}");
    let e = transfer(&vm, write, 0x8400_0000, 8192).unwrap_err();
    assert!(e.contains("cannot write 8192 bytes at guest address 0x84000000: not inside RAM"), "{e}");
    // The error is the device's, from a guest access to it.
    assert!(e.starts_with(&format!("guest access to device 'dma0' at {:#x}: ", BASE + write)), "{e}");

    // Still up, and sane transfers work: all of RAM, and a few bytes of the UART's registers.
    assert_eq!(transfer(&vm, read, 0x8000_0000, 64 << 20), Ok(64 << 20));
    assert_eq!(transfer(&vm, write, 0x8000_1000, 16), Ok(16));
    assert_eq!(transfer(&vm, read, 0x1000_0000, 8), Ok(8));
}
