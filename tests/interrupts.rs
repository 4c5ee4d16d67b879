//! Interrupts are taken without leaving the engine: a million of them cost a handful of engine
//! runs, not a million, and every guest still counts exactly what it should.

use vm_host::{Outcome, Vm, VmConfig};
use vm_tests::*;

/// Runs guest `name` to power-off with its console in a file; returns the console, the number of
/// engine runs it took and the instructions it retired.
async fn run_counting(name: &str) -> (String, u64, u64) {
    let dir = scratch(&format!("interrupts-{name}"));
    let console = dir.join("console.txt");
    let dev = format!("{UART}[device.config]\noutput = {{ file = \"{}\" }}\n", console.display());
    let toml = write_vm_toml(&dir, &guest(name), "interp", &dev);
    let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    assert_eq!(within(vm.run()).await.unwrap(), Outcome::PowerOff(0), "{name}");
    let text = std::fs::read_to_string(&console).unwrap().replace('\r', "");
    (text, vm.engine_runs(), vm.cpu().instret)
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupts_wfi_and_line_changes_do_not_leave_the_engine() {
    for name in ["irq_timer", "irq_soft", "irq_wfi", "irq_uart", "plic"] {
        let (console, runs, instret) = run_counting(name).await;
        let expected = std::fs::read_to_string(root().join(format!("guests/expected/{name}.out"))).unwrap();
        assert_eq!(console, expected, "{name}");
        // The default slice is 4 Mi instructions: the runs a guest needs for its length, plus a
        // few for the CSR writes that unmask interrupts, are all it may take.
        let slices = instret / (1 << 22) + 1;
        eprintln!("{name}: {runs} engine runs, {instret} instructions");
        assert!(runs <= slices + 16, "{name}: {runs} engine runs for {instret} instructions");
    }
}
