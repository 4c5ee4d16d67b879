//! A hostile guest: random instruction words at wild addresses must never crash, hang or panic the
//! host; the run ends with an outcome or a clean error.

use vm_host::{Outcome, Vm, VmConfig};
use vm_plugin_api::ErrorKind;
use vm_tests::*;

/// `auipc t0, 0; csrw mtvec, t0`: every trap re-enters the image from its start.
const PROLOGUE: [u32; 2] = [0x0000_0297, 0x3052_9073];

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread")]
async fn random_code_never_crashes_the_host() {
    for seed in 1..=8u64 {
        let dir = scratch(&format!("hostile-{seed}"));
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut image: Vec<u8> = PROLOGUE.iter().flat_map(|w| w.to_le_bytes()).collect();
        for _ in 0..4096 {
            // Low bits 0b11: full-width encodings, so most words decode to something.
            let word = (xorshift(&mut state) as u32) | 3;
            image.extend_from_slice(&word.to_le_bytes());
        }
        let kernel = dir.join("random.bin");
        std::fs::write(&kernel, &image).unwrap();
        let console = dir.join("console.txt");
        let dev = format!("{UART}[device.config]\noutput = {{ file = \"{}\" }}\n", console.display());
        let toml = write_vm_toml(&dir, &kernel, "interp", &dev);
        let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
        vm.start().unwrap();
        let r = within(vm.run_until(2_000_000)).await;
        vm.shutdown().unwrap();
        eprintln!("seed {seed}: {r:?} after {} instructions", vm.cpu().instret);
        match r {
            Ok(Outcome::Paused | Outcome::PowerOff(_) | Outcome::Reset) => {}
            Ok(other) => panic!("seed {seed}: unexpected outcome {other:?}"),
            Err(e) => {
                let vm_host::HostError::Vm(e) = e else { panic!("seed {seed}: {e}") };
                assert_ne!(e.kind, ErrorKind::Panic, "seed {seed}: {e}");
            }
        }
    }
}
