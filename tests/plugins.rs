//! Plugins as shared libraries: a third-party device built out of tree, two engines in one process,
//! and every kind of library the host must refuse without crashing.

use std::path::{Path, PathBuf};
use vm_host::loader::{self, Source};
use vm_host::{Outcome, Vm, VmConfig};
use vm_plugin_api::{PLUGIN_API_VERSION, VmEvent};
use vm_tests::*;

fn scratch_device() -> PathBuf {
    build_out_of_tree("scratch", "examples/scratch-device", None)
}

fn with_device(name: &str, guest_name: &str, plugin: &Path) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let dev =
        format!("{UART}\n[[device]]\nid = \"dev0\"\nplugin = \"{}\"\nbase = 0x1000_2000\n", plugin.display());
    (write_vm_toml(&dir, &guest(guest_name), "interp", &dev), dir)
}

#[test]
fn third_party_device_built_out_of_tree_loads_and_answers() {
    let so = scratch_device();
    let (toml, _) = with_device("plugin-scratch", "hello", &so);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[("RUST_LOG", "info")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("device 'dev0': plugin 'scratch' 0.1.0 ({})", so.display())));

    // The device answers on the bus where vm.toml put it.
    let config = VmConfig::load(&toml).unwrap();
    let vm = Vm::new(&config).unwrap();
    let bus = &vm.machine().bus;
    assert_eq!(bus.read(0x1000_2000, 4), Ok(0x4152_4353), "ID register");
    bus.write(0x1000_2008, 4, 0xfeed).unwrap();
    assert_eq!(bus.read(0x1000_2008, 4), Ok(0xfeed), "scratch register");
}

/// The example device built against a plugin-api copy that says it is 0.1.0: what a plugin built
/// for the previous release looks like to the loader's version check.
fn scratch_device_for_api_0_1() -> PathBuf {
    build_out_of_tree(
        "scratch-api-0.1",
        "examples/scratch-device",
        Some(|api| patch_file(&api.join("Cargo.toml"), "version = \"0.2.0\"", "version = \"0.1.0\"")),
    )
}

#[test]
fn plugin_listing_shows_builtin_and_shared_plugins_and_why_one_is_refused() {
    let so = scratch_device();
    let old = scratch_device_for_api_0_1();
    let dirs = format!("{}:{}", so.parent().unwrap().display(), old.parent().unwrap().display());
    let out = run(&vmhost(), &["plugins"], &[("VMHOST_PLUGIN_PATH", &dirs)]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0));
    let row = |name: &str, kind: &str, source: &str| {
        text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 8
                && f[0] == name
                && f[1] == kind
                && f[3] == PLUGIN_API_VERSION
                && f[4] == "compatible"
                && f[5] == "release"
                && f[7] == source
        })
    };
    assert!(row("interp", "engine", "built-in"), "{text}");
    assert!(row("serial", "device", "built-in"), "{text}");
    assert!(row("scratch", "device", so.to_str().unwrap()), "{text}");
    let next_to_binary = build_dir().join("libvmhost_interp.so");
    assert!(row("interp", "engine", next_to_binary.to_str().unwrap()), "{text}");
    let at = text
        .lines()
        .position(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 8
                && f[..6] == ["scratch", "?", "?", "0.1.0", "refused", "?"]
                && f[7] == old.to_str().unwrap()
        })
        .unwrap_or_else(|| panic!("no refused row: {text}"));
    let why = text.lines().nth(at + 1).unwrap();
    assert!(why.contains("was built against plugin-api 0.1.0"), "{why}");
}

#[test]
fn plugin_built_against_another_plugin_api_version_is_refused() {
    let so = scratch_device_for_api_0_1();
    let (toml, _) = with_device("plugin-version", "hello", &so);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("key `device.plugin` of device 'dev0'"), "{err}");
    assert!(
        err.contains(&format!(
            "plugin 'scratch' ({}) was built against plugin-api 0.1.0, but this vmhost uses plugin-api {PLUGIN_API_VERSION}, \
             which is not compatible; rebuild the plugin against plugin-api {PLUGIN_API_VERSION}",
            so.display()
        )),
        "{err}"
    );
}

#[test]
fn plugin_whose_boundary_layout_differs_is_refused() {
    let so = build_out_of_tree(
        "scratch-layout",
        "examples/scratch-device",
        Some(|api| patch_file(&api.join("src/cpu.rs"), "pub privilege: u8,", "pub privilege: u16,")),
    );
    let e = loader::load_file(&so).err().expect("refused");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "plugin 'scratch' ({}), built against plugin-api {PLUGIN_API_VERSION}, does not match the plugin ABI of this \
             vmhost (plugin-api {PLUGIN_API_VERSION}): Error:",
            so.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("u8") && msg.contains("u16"), "names both layouts: {msg}");
    assert!(msg.ends_with(&format!("rebuild the plugin against plugin-api {PLUGIN_API_VERSION}")), "{msg}");
    assert!(msg.len() < 1500, "the message is the useful tail, not abi_stable's full report: {msg}");

    // Through the binary: refused, no crash.
    let (toml, _) = with_device("plugin-layout", "hello", &so);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("does not match the plugin ABI of this vmhost"), "{}", stderr(&out));
}

#[test]
fn files_that_are_not_plugins_are_refused() {
    let dir = scratch("plugin-junk");
    let text = dir.join("libvmhost_text.so");
    std::fs::write(&text, "not a library").unwrap();
    let e = loader::load_file(&text).err().unwrap().to_string();
    assert!(e.starts_with(&format!("{} is not a vmhost plugin: ", text.display())), "{e}");

    // A real shared library without a plugin root module.
    let lib = dir.join("libvmhost_nomodule.so");
    let libc = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("libm present");
    std::fs::copy(libc, &lib).unwrap();
    let e = loader::load_file(&lib).err().unwrap().to_string();
    assert_eq!(
        e,
        format!(
            "{} is not a vmhost plugin: it does not export a plugin root module (build it with \
             vm_plugin_api::export_plugin!)",
            lib.display()
        )
    );

    let (toml, _) = with_device("plugin-junk-run", "hello", &text);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not a vmhost plugin"), "{}", stderr(&out));
}

#[test]
fn missing_plugin_file_is_refused() {
    let dir = scratch("plugin-missing");
    let missing = dir.join("libvmhost_gone.so");
    let (toml, _) = with_device("plugin-missing-run", "hello", &missing);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "key `device.plugin` of device 'dev0': plugin file {} cannot be opened: No such file or directory",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn panicking_plugin_becomes_an_error_and_the_host_shuts_down_cleanly() {
    let so = build_out_of_tree("panicky", "tests/fixtures/panicky-device", None);
    let dir = scratch("plugin-panic");
    let dev = format!("\n[[device]]\nid = \"uart0\"\nplugin = \"{}\"\nbase = 0x1000_0000\n", so.display());
    let toml = write_vm_toml(&dir, &guest("hello"), "interp", &dev);
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[("RUST_LOG", "info")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "an error exit, not an abort: {err}");
    assert!(
        err.contains(
            "vmhost: error: plugin panicked: guest access to device 'uart0' at 0x10000001: device 'uart0' (panicky) \
             write panicked: write of 0x0 at offset 0x1 reached the panicky device"
        ),
        "{err}"
    );
    // Every component was still stopped, engine first.
    let stop_engine = err.find("stopped component=interp").expect("engine stopped");
    let stop_dev = err.find("stopped component=uart0").expect("device stopped");
    assert!(stop_engine < stop_dev, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_engine_plugins_of_one_kind_load_and_both_run() {
    let dir = scratch("plugin-two-engines");
    let mut engines = Vec::new();
    for name in ["a", "b"] {
        std::fs::create_dir_all(dir.join(name)).unwrap();
        let so = dir.join(name).join("libvmhost_interp.so");
        std::fs::copy(build_dir().join("libvmhost_interp.so"), &so).unwrap();
        engines.push(so);
    }
    let a = loader::load_file(&engines[0]).ok().unwrap();
    let b = loader::load_file(&engines[1]).ok().unwrap();
    assert_eq!(
        (a.source.clone(), b.source.clone()),
        (Source::File(engines[0].clone()), Source::File(engines[1].clone()))
    );
    assert_ne!(a.module.info() as usize, b.module.info() as usize, "two separate library instances");

    let log = dir.join("console.txt");
    let dev = format!("{UART}[device.config]\noutput = {{ file = \"{}\" }}\n", log.display());
    let toml = write_vm_toml(&dir, &guest("isa"), engines[0].to_str().unwrap(), &dev);
    let mut vm = Vm::new(&VmConfig::load(&toml).unwrap()).unwrap();
    let swaps = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = swaps.clone();
    vm.events().subscribe_fn(move |e| {
        if let VmEvent::EngineSwapped { from, to } = e {
            seen.lock().unwrap().push((from.to_string(), to.to_string()));
        }
    });
    vm.start().unwrap();
    assert_eq!(within(vm.run_until(20_000)).await.unwrap(), Outcome::Paused);
    let (_, first) = vm.engine_stats();
    assert!(first.instructions >= 20_000, "engine a ran: {first:?}");

    vm.swap_engine(b, "").unwrap();
    assert_eq!(within(vm.run_until(u64::MAX)).await.unwrap(), Outcome::PowerOff(0));
    let (name, second) = vm.engine_stats();
    assert_eq!(name, "interp");
    assert!(second.instructions > 0, "engine b ran: {second:?}");
    assert_eq!(
        first.instructions + second.instructions,
        vm.cpu().instret,
        "every instruction ran on one of them"
    );
    vm.shutdown().unwrap();
    assert_eq!(*swaps.lock().unwrap(), [("interp".to_string(), "interp".to_string())]);
    let console = std::fs::read_to_string(&log).unwrap();
    assert!(console.contains("isa: 152 checks passed"), "{console}");
}

#[test]
fn a_library_rebuilt_in_place_is_loaded_anew_and_an_unchanged_one_is_not() {
    let dir = scratch("plugin-rebuilt");
    let so = dir.join("libvmhost_interp.so");
    std::fs::copy(build_dir().join("libvmhost_interp.so"), &so).unwrap();
    let first = loader::load_file(&so).ok().unwrap();
    let again = loader::load_file(&so).ok().unwrap();
    assert_eq!(first.module.info() as usize, again.module.info() as usize, "unchanged: the same library");

    // "Rebuilt" as cargo and the linker do it: a new file renamed over the old one (writing into
    // the mapped file itself would change the code under the running library).
    let new = dir.join("new.so");
    std::fs::copy(build_dir().join("libvmhost_interp.so"), &new).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&new).unwrap().set_modified(later).unwrap();
    std::fs::rename(&new, &so).unwrap();
    let rebuilt = loader::load_file(&so).ok().unwrap();
    assert_ne!(first.module.info() as usize, rebuilt.module.info() as usize, "rebuilt: a new library");
    assert_eq!(rebuilt.source, Source::File(so.clone()), "named by the file the user gave");
    assert_eq!(rebuilt.info.name.as_str(), "interp");
    // The private copy it was mapped from is gone.
    let copies: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(&format!("vmhost-{}-reload-", std::process::id()))
        })
        .collect();
    assert!(copies.is_empty(), "{copies:?}");
}
