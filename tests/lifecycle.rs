//! Component lifecycle: init, start in order, stop in reverse, each transition published.

use std::sync::{Arc, Mutex};
use vm_host::{Outcome, Vm, VmConfig};
use vm_plugin_api::VmEvent;
use vm_tests::*;

#[tokio::test(flavor = "multi_thread")]
async fn components_start_in_order_and_stop_in_reverse() {
    let dir = scratch("lifecycle-order");
    // The same device plugin twice, each with its own console file.
    let mut devices = String::new();
    for (i, base) in [(0, "0x1000_0000"), (1, "0x1000_1000")] {
        let out = dir.join(format!("uart{i}.txt"));
        devices += &format!(
            "\n[[device]]\nid = \"uart{i}\"\nplugin = \"serial\"\nbase = {base}\n[device.config]\noutput = {{ file = \"{}\" }}\n",
            out.display()
        );
    }
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &devices);
    let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    vm.events().subscribe_fn(move |e| match e {
        VmEvent::ComponentStarted(n) => sink.lock().unwrap().push(format!("started {n}")),
        VmEvent::ComponentStopped(n) => sink.lock().unwrap().push(format!("stopped {n}")),
        VmEvent::ExecutionCompleted(s) => sink.lock().unwrap().push(format!("ran {}", s.instructions)),
        _ => {}
    });
    assert_eq!(within(vm.run()).await.unwrap(), Outcome::PowerOff(0));
    let ran = format!("ran {}", vm.cpu().instret);
    assert_eq!(
        *log.lock().unwrap(),
        [
            "started uart0",
            "started uart1",
            "started interp",
            &ran,
            "stopped interp",
            "stopped uart1",
            "stopped uart0"
        ]
    );
    let console = std::fs::read_to_string(dir.join("uart0.txt")).unwrap();
    assert_eq!(console.replace('\r', ""), "Hello from vmhost guest!\nhart 0\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("uart1.txt")).unwrap(),
        "",
        "the guest only uses the first UART"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_handle_ends_a_running_guest() {
    let dir = scratch("lifecycle-stop");
    let out = dir.join("console.txt");
    let dev = format!("{UART}[device.config]\noutput = {{ file = \"{}\" }}\n", out.display());
    let toml = write_vm_toml(&dir, &guest("bench"), "interp", &dev);
    let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    let stop = vm.stop_handle();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        stop.stop();
    });
    assert_eq!(within(vm.run()).await.unwrap(), Outcome::Stopped);
    assert!(vm.cpu().instret > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_named_like_the_engine_is_still_stopped() {
    let dir = scratch("lifecycle-same-name");
    let out = dir.join("console.txt");
    let dev = format!(
        "\n[[device]]\nid = \"interp\"\nplugin = \"serial\"\nbase = 0x1000_0000\n[device.config]\noutput = {{ file = \"{}\" }}\n",
        out.display()
    );
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &dev);
    let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    assert_eq!(within(vm.run()).await.unwrap(), Outcome::PowerOff(0));
    let device = vm.machine().devices[0].device.lock().unwrap().0.status();
    assert_eq!(device, vm_plugin_api::ComponentStatus::Stopped);
}
