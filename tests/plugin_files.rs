//! Plugin files the host must refuse or explain without crashing or blocking: truncated and
//! foreign libraries, FIFOs, a plugin that calls itself by another name than its file's, names
//! that are almost right; and the build profile and age shown for each library.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};
use vm_host::loader;
use vm_plugin_api::PLUGIN_API_VERSION;
use vm_tests::*;

/// The first `len` bytes of the in-tree `libvmhost_<name>.so`, as `dir/libvmhost_<name>.so`.
fn truncated(dir: &Path, name: &str, len: usize) -> PathBuf {
    let lib = format!("libvmhost_{name}.so");
    let bytes = std::fs::read(build_dir().join(&lib)).expect("read in-tree plugin");
    assert!(bytes.len() > len, "the library is larger than {len} bytes");
    let path = dir.join(lib);
    std::fs::write(&path, &bytes[..len]).expect("write truncated copy");
    path
}

/// A copy of the in-tree `libvmhost_serial.so` as `dir/<file>`, with `bytes` written at `at`.
fn patched_serial(dir: &Path, file: &str, at: usize, bytes: &[u8]) -> PathBuf {
    let mut data = std::fs::read(build_dir().join("libvmhost_serial.so")).expect("read in-tree plugin");
    data[at..at + bytes.len()].copy_from_slice(bytes);
    let path = dir.join(file);
    std::fs::write(&path, data).expect("write patched copy");
    path
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A vm.toml in a fresh scratch dir booting hello on interp, with the UART and, if given, a
/// second device `dev0` from `plugin`.
fn vm_toml(name: &str, engine: &str, plugin: Option<&str>) -> PathBuf {
    let dir = scratch(name);
    let dev = plugin.map_or(String::new(), |p| {
        format!("\n[[device]]\nid = \"dev0\"\nplugin = \"{p}\"\nbase = 0x1000_2000\n")
    });
    write_vm_toml(&dir, &guest("hello"), engine, &format!("{UART}{dev}"))
}

fn run_vm(exe: &Path, toml: &Path, env: &[(&str, &str)]) -> std::process::Output {
    run(exe, &["run", toml.to_str().unwrap()], env)
}

/// The fields of the `vmhost plugins` row whose source is `source`, and the line after it.
fn listing_row(text: &str, source: &Path) -> (Vec<String>, String) {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.split_whitespace().last() == Some(source.to_str().unwrap()))
        .unwrap_or_else(|| panic!("no row for {}: {text}", source.display()));
    let fields = lines[at].split_whitespace().map(String::from).collect();
    (fields, lines.get(at + 1).copied().unwrap_or_default().to_string())
}

fn truncation(path: &Path, len: usize) -> (String, String) {
    (
        format!("{} cannot be loaded: segment ", path.display()),
        format!("lies past the end of the {len}-byte file: the library is truncated"),
    )
}

fn assert_truncation_named(err: &str, path: &Path, len: usize) {
    let (head, tail) = truncation(path, len);
    let line =
        err.lines().find(|l| l.contains(&head)).unwrap_or_else(|| panic!("no refusal of {head}: {err}"));
    assert!(line.contains(&tail), "{line}");
}

#[test]
fn truncated_libraries_next_to_the_binary_give_way_to_the_builtins() {
    let exe = lone_vmhost("pf-trunc-lone");
    let dir = exe.parent().unwrap();
    let interp = truncated(dir, "interp", 64 * 1024);
    let serial = truncated(dir, "serial", 4096);
    let out = run_vm(&exe, &vm_toml("pf-trunc-lone-cfg", "interp", None), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(stdout(&out).contains("Hello from vmhost guest!"), "{}", stdout(&out));
    assert_truncation_named(&err, &interp, 64 * 1024);
    assert_truncation_named(&err, &serial, 4096);
    assert!(err.contains("the library is truncated; ignoring it"), "{err}");
    assert!(err.contains("plugin 'interp': using the built-in one"), "{err}");
    assert!(err.contains("plugin 'serial': using the built-in one"), "{err}");
}

#[test]
fn truncated_libraries_on_the_plugin_path_give_way_to_the_builtins() {
    let exe = lone_vmhost("pf-trunc-env-exe");
    let dir = scratch("pf-trunc-env");
    let interp = truncated(&dir, "interp", 4096);
    let serial = truncated(&dir, "serial", 64 * 1024);
    let out = run_vm(
        &exe,
        &vm_toml("pf-trunc-env-cfg", "interp", None),
        &[("VMHOST_PLUGIN_PATH", dir.to_str().unwrap())],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_truncation_named(&err, &interp, 4096);
    assert_truncation_named(&err, &serial, 64 * 1024);
    assert!(err.contains("plugin 'serial': using the built-in one"), "{err}");
}

#[test]
fn truncated_libraries_named_by_path_are_refused() {
    let dir = scratch("pf-trunc-path");
    for (name, len) in [("serial", 4096), ("serial", 64 * 1024)] {
        let sub = dir.join(len.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let so = truncated(&sub, name, len);
        let toml = vm_toml(&format!("pf-trunc-path-{len}"), "interp", Some(so.to_str().unwrap()));
        let out = run_vm(&vmhost(), &toml, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("key `device.plugin` of device 'dev0': "), "{err}");
        assert_truncation_named(&err, &so, len);
    }
    // The engine too.
    let so = truncated(&dir, "interp", 64 * 1024);
    let out = run_vm(&vmhost(), &vm_toml("pf-trunc-path-engine", so.to_str().unwrap(), None), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("key `engine.plugin`: "), "{err}");
    assert_truncation_named(&err, &so, 64 * 1024);
}

#[test]
fn plugins_listing_shows_truncated_and_fifo_libraries_as_refused() {
    let dir = scratch("pf-list-refused");
    let serial = truncated(&dir, "serial", 4096);
    let interp = truncated(&dir, "interp", 64 * 1024);
    let fifo = dir.join("libvmhost_fifo.so");
    mkfifo(&fifo);
    let out = run(&vmhost(), &["plugins"], &[("VMHOST_PLUGIN_PATH", dir.to_str().unwrap())]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for (path, name, len) in [(&serial, "serial", 4096), (&interp, "interp", 64 * 1024)] {
        let (fields, why) = listing_row(&text, path);
        assert_eq!(fields[..6], [name, "?", "?", "?", "refused", "?"], "{text}");
        let (head, tail) = truncation(path, len);
        assert!(why.trim_start().starts_with(&head) && why.ends_with(&tail), "{why}");
    }
    let (fields, why) = listing_row(&text, &fifo);
    assert_eq!(fields[..5], ["fifo", "?", "?", "?", "refused"], "{text}");
    assert_eq!(
        why.trim_start(),
        format!("{} cannot be loaded: it is a FIFO (named pipe), not a regular file", fifo.display())
    );
}

#[test]
fn a_fifo_as_plugin_is_refused_without_blocking() {
    let dir = scratch("pf-fifo");
    let fifo = dir.join("libvmhost_fifo.so");
    mkfifo(&fifo);
    let out = run_vm(&vmhost(), &vm_toml("pf-fifo-cfg", "interp", Some(fifo.to_str().unwrap())), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "key `device.plugin` of device 'dev0': {} cannot be loaded: it is a FIFO (named pipe), not a regular file",
            fifo.display()
        )),
        "{err}"
    );

    // A FIFO on the search path under a built-in's name: skipped, the built-in serves.
    let on_path = scratch("pf-fifo-path");
    let serial = on_path.join("libvmhost_serial.so");
    mkfifo(&serial);
    let out = run_vm(
        &vmhost(),
        &vm_toml("pf-fifo-path-cfg", "interp", None),
        &[("VMHOST_PLUGIN_PATH", on_path.to_str().unwrap())],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "{} cannot be loaded: it is a FIFO (named pipe), not a regular file; ignoring it",
            serial.display()
        )),
        "{err}"
    );
}

#[test]
fn libraries_of_another_class_byte_order_machine_or_type_are_refused() {
    let dir = scratch("pf-foreign");
    let host = if cfg!(target_arch = "x86_64") { "x86_64" } else { "AArch64" };
    let foreign: u16 = if cfg!(target_arch = "x86_64") { 183 } else { 62 }; // EM_AARCH64 / EM_X86_64
    let cases: [(&str, usize, &[u8], String); 5] = [
        ("libvmhost_class.so", 4, &[1], format!("it is a 32-bit ELF file; this vmhost ({host}) loads 64-bit libraries")),
        ("libvmhost_endian.so", 5, &[2], format!("it is a big-endian ELF file; this vmhost ({host}) loads little-endian libraries")),
        ("libvmhost_machine.so", 18, &foreign.to_le_bytes(), format!("it is built for {}, but this vmhost runs on {host}", if foreign == 183 { "AArch64" } else { "x86_64" })),
        ("libvmhost_rel.so", 16, &[1, 0], "it is an object file (ET_REL), not a shared library; build the plugin crate with crate-type = [\"cdylib\"]".into()),
        ("libvmhost_exec.so", 16, &[2, 0], "it is an executable (ET_EXEC), not a shared library; build the plugin crate with crate-type = [\"cdylib\"]".into()),
    ];
    for (file, at, bytes, reason) in cases {
        let so = patched_serial(&dir, file, at, bytes);
        let e = loader::load_file(&so).err().unwrap_or_else(|| panic!("{file} accepted"));
        assert_eq!(e.to_string(), format!("{} cannot be loaded: {reason}", so.display()));
    }
    // Through the binary too, named by path: an error exit, not a crash.
    let so = dir.join("libvmhost_machine.so");
    let out = run_vm(&vmhost(), &vm_toml("pf-foreign-cfg", "interp", Some(so.to_str().unwrap())), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("but this vmhost runs on"), "{}", stderr(&out));
}

fn set_mtime(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).expect("open to set mtime");
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs)).expect("set mtime");
}

#[test]
fn listing_and_load_log_show_build_profile_and_modification_time() {
    let dir = scratch("pf-profile");
    let so = dir.join("libvmhost_serial.so");
    std::fs::copy(build_dir().join("libvmhost_serial.so"), &so).unwrap();
    set_mtime(&so, 1_000_000_000);
    let env = [("VMHOST_PLUGIN_PATH", dir.to_str().unwrap())];
    let out = run(&vmhost(), &["plugins"], &env);
    let text = stdout(&out);
    let (fields, _) = listing_row(&text, &so);
    assert_eq!(
        fields,
        [
            "serial",
            "device",
            "0.1.0",
            PLUGIN_API_VERSION,
            "compatible",
            "release",
            "2001-09-09T01:46:40Z",
            so.to_str().unwrap()
        ],
        "{text}"
    );
    // Built-ins show the host's own profile.
    assert!(
        text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()[..]
            == ["serial", "device", "0.1.0", PLUGIN_API_VERSION, "compatible", "release", "-", "built-in"]),
        "{text}"
    );

    let out = run_vm(&vmhost(), &vm_toml("pf-profile-cfg", "interp", None), &[env[0], ("RUST_LOG", "info")]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "plugin 'serial' 0.1.0 ({}); release build, modified 2001-09-09T01:46:40Z (",
            so.display()
        )),
        "{err}"
    );
    assert!(err.contains("days ago)"), "{err}");
}

/// Fixture builds write one shared target dir: one at a time, each copied out before the next.
static FIXTURES: Mutex<()> = Mutex::new(());

/// Builds a copy of examples/scratch-device changed by `edit` (given the copy's directory),
/// against the workspace's own plugin-api; returns the `.so` (in a directory of its own).
fn scratch_variant(key: &str, edit: fn(&Path)) -> PathBuf {
    let _one_at_a_time = FIXTURES.lock().unwrap_or_else(|p| p.into_inner());
    let src = target_root().join("fixtures/src").join(key).join("scratch-device");
    let _ = std::fs::remove_dir_all(&src);
    copy_dir(&root().join("examples/scratch-device"), &src);
    let api = format!("path = \"{}\"", root().join("plugin-api").display());
    patch_file(&src.join("Cargo.toml"), "path = \"../../plugin-api\"", &api);
    std::fs::copy(root().join("Cargo.lock"), src.join("Cargo.lock")).expect("copy Cargo.lock");
    edit(&src);
    build_plugin_crate(&src, &target_root().join("fixtures/out").join(key))
}

#[test]
fn a_plugin_built_with_debug_assertions_shows_as_a_debug_build() {
    let so = scratch_variant("scratch-debug", |src| {
        let manifest = src.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let text = text + "\n[profile.release.package.vmhost-scratch-device]\ndebug-assertions = true\n";
        std::fs::write(manifest, text).unwrap();
    });
    let out = run(&vmhost(), &["plugins"], &[("VMHOST_PLUGIN_PATH", so.parent().unwrap().to_str().unwrap())]);
    let (fields, _) = listing_row(&stdout(&out), &so);
    assert_eq!(
        fields[..6],
        ["scratch", "device", "0.1.0", PLUGIN_API_VERSION, "compatible", "debug"],
        "{}",
        stdout(&out)
    );
    let out = run_vm(
        &vmhost(),
        &vm_toml("pf-debug-cfg", "interp", Some(so.to_str().unwrap())),
        &[("RUST_LOG", "info")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("plugin 'scratch' 0.1.0 ({}); debug build, modified ", so.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_plugin_built_before_plugins_recorded_their_profile_still_loads() {
    // plugin-api 0.1.0 as it was before `export_plugin!` exported VMHOST_PLUGIN_BUILD: the ABI
    // check must still pass, and the profile is shown as unknown.
    let so = {
        let _one_at_a_time = FIXTURES.lock().unwrap_or_else(|p| p.into_inner());
        build_out_of_tree(
            "scratch-no-build-record",
            "examples/scratch-device",
            Some(|api| {
                let block = "        #[doc(hidden)]\n        #[unsafe(no_mangle)]\n        pub static VMHOST_PLUGIN_BUILD: \
                             [u8; 16] = $crate::module::build_tag(cfg!(debug_assertions));\n";
                patch_file(&api.join("src/module.rs"), block, "")
            }),
        )
    };
    let p = loader::load_file(&so).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.build.profile, None);
    let out = run(&vmhost(), &["plugins"], &[("VMHOST_PLUGIN_PATH", so.parent().unwrap().to_str().unwrap())]);
    let (fields, _) = listing_row(&stdout(&out), &so);
    assert_eq!(
        fields[..6],
        ["scratch", "device", "0.1.0", PLUGIN_API_VERSION, "compatible", "unknown"],
        "{}",
        stdout(&out)
    );
    let out = run_vm(
        &vmhost(),
        &vm_toml("pf-nobuild-cfg", "interp", Some(so.to_str().unwrap())),
        &[("RUST_LOG", "info")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains(&format!("plugin 'scratch' 0.1.0 ({}); profile unknown, modified ", so.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_plugin_calling_itself_by_another_name_than_its_file_is_reported() {
    // libvmhost_rng.so whose plugin says it is 'random'.
    let so = scratch_variant("scratch-rng-random", |src| {
        patch_file(&src.join("Cargo.toml"), "name = \"vmhost_scratch\"", "name = \"vmhost_rng\"");
        patch_file(
            &src.join("src/lib.rs"),
            "const NAME: &'static str = \"scratch\";",
            "const NAME: &'static str = \"random\";",
        );
    });
    assert!(so.ends_with("libvmhost_rng.so"));
    let dir = so.parent().unwrap().to_str().unwrap();
    let why = format!(
        "{} was looked up as plugin 'rng', but the plugin in it calls itself 'random' (its PluginDescription::NAME); \
         rename the file libvmhost_random.so, or name the file by path",
        so.display()
    );

    // By name: refused, naming both names and the file.
    let out =
        run_vm(&vmhost(), &vm_toml("pf-rng-name", "interp", Some("rng")), &[("VMHOST_PLUGIN_PATH", dir)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("key `device.plugin` of device 'dev0': {why}")),
        "{}",
        stderr(&out)
    );

    // Listed under the file's name, flagged.
    let out = run(&vmhost(), &["plugins"], &[("VMHOST_PLUGIN_PATH", dir)]);
    let (fields, note) = listing_row(&stdout(&out), &so);
    assert_eq!(
        fields[..6],
        ["rng", "device", "0.1.0", PLUGIN_API_VERSION, "mismatch", "release"],
        "{}",
        stdout(&out)
    );
    assert_eq!(note.trim_start(), why);

    // By path: the file is what was asked for, so it loads under its own name.
    let out = run_vm(
        &vmhost(),
        &vm_toml("pf-rng-path", "interp", Some(so.to_str().unwrap())),
        &[("RUST_LOG", "info")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("device 'dev0': plugin 'random' 0.1.0 ({})", so.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_name_gets_the_closest_name_found() {
    let out = run_vm(&vmhost(), &vm_toml("pf-mean-builtin", "interp", Some("serail")), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("key `device.plugin` of device 'dev0': no plugin named 'serail': not built in, and no libvmhost_serail.so in "), "{err}");
    assert!(err.contains("; did you mean 'serial'?"), "{err}");

    // Names of files on the search path count too (file names only: nothing is loaded).
    let dir = scratch("pf-mean-file");
    std::fs::write(dir.join("libvmhost_scratch.so"), "not loaded").unwrap();
    let out = run_vm(
        &vmhost(),
        &vm_toml("pf-mean-file-cfg", "interp", Some("scrach")),
        &[("VMHOST_PLUGIN_PATH", dir.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no plugin named 'scrach'")
            && stderr(&out).contains("; did you mean 'scratch'?"),
        "{}",
        stderr(&out)
    );

    // Nothing close: no guess.
    let out = run_vm(&vmhost(), &vm_toml("pf-mean-none", "interp", Some("qqqqqq")), &[]);
    assert!(!stderr(&out).contains("did you mean"), "{}", stderr(&out));
}

#[test]
fn a_library_without_the_libvmhost_prefix_is_pointed_out() {
    for file in ["librng.so", "rng.so"] {
        let dir = scratch(&format!("pf-prefix-{file}"));
        std::fs::copy(build_dir().join("libvmhost_serial.so"), dir.join(file)).unwrap();
        let out = run_vm(
            &vmhost(),
            &vm_toml(&format!("pf-prefix-cfg-{file}"), "interp", Some("rng")),
            &[("VMHOST_PLUGIN_PATH", dir.to_str().unwrap())],
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!(
                "no plugin named 'rng': not built in, and no libvmhost_rng.so in {}, {}; found {file} in {}, but plugins \
                 are looked up as libvmhost_<name>.so: rename it libvmhost_rng.so, or name the file by path",
                dir.display(),
                build_dir().display(),
                dir.display()
            )),
            "{}",
            stderr(&out)
        );
    }
}
