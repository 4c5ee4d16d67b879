//! `[machine] clock = "instructions"`: `mtime` follows instructions retired, so a guest with the
//! same input gives the same run: the same console output (guest time included), the same
//! instruction count, the same engine runs, the same final `mtime`.

use vm_host::{Outcome, Vm, VmConfig};
use vm_tests::*;

/// Runs guest `name` with the instruction clock; returns (console, instret, engine runs, mtime).
async fn run_once(name: &str, run: u32) -> (String, u64, u64, u64) {
    let dir = scratch(&format!("deterministic-{name}-{run}"));
    let console = dir.join("console.txt");
    let dev = format!("{UART}[device.config]\noutput = {{ file = \"{}\" }}\n", console.display());
    let toml = write_vm_toml(&dir, &guest(name), "interp", &dev);
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("memory = \"64M\"", "memory = \"64M\"\nclock = \"instructions\"");
    std::fs::write(&toml, text).unwrap();
    let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    assert_eq!(within(vm.run()).await.unwrap(), Outcome::PowerOff(0), "{name}");
    let out = std::fs::read_to_string(&console).unwrap().replace('\r', "");
    (out, vm.cpu().instret, vm.engine_runs(), vm.machine().clint.mtime())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_instruction_clock_makes_runs_repeat_exactly() {
    // timer: a software interrupt, then five timer interrupts 1 ms apart waited for in `wfi`
    // (the waits are skipped, not slept); bench prints its own cycle and time counters.
    for name in ["timer", "bench"] {
        let first = run_once(name, 1).await;
        let second = run_once(name, 2).await;
        assert_eq!(first, second, "{name}: two runs differ");
        if name == "timer" {
            let expected = std::fs::read_to_string(root().join("guests/expected/timer.out")).unwrap();
            assert_eq!(first.0, expected, "the timer guest's checks pass");
            // Five 1 ms periods of guest time went by, though the waits took no host time.
            assert!(first.3 >= 5 * 10_000, "mtime {}", first.3);
        } else {
            let time = first.0.lines().find_map(|l| l.strip_prefix("time=")).expect("bench prints time=");
            let instret =
                first.0.lines().find_map(|l| l.strip_prefix("instret=")).expect("bench prints instret=");
            let (time, instret): (u64, u64) = (time.parse().unwrap(), instret.parse().unwrap());
            // 100 instructions per tick (the two counters are read a few instructions apart).
            assert!(time.abs_diff(instret / 100) <= 1, "guest time {time} for {instret} instructions");
        }
    }
}
