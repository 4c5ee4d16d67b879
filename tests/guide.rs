//! docs/writing-plugins.md works as written: its device plugin, its vm.toml and its guest, taken
//! from the page's code blocks, build, boot and answer, and the device tree shows the node.

use std::process::Command;
use vm_tests::*;

/// The first fenced block of `lang` in `doc` whose text starts with `start`.
fn block(doc: &str, lang: &str, start: &str) -> String {
    let fence = format!("```{lang}\n");
    doc.split(&fence)
        .skip(1)
        .map(|b| b.split("\n```").next().unwrap_or_default())
        .find(|b| b.starts_with(start))
        .unwrap_or_else(|| panic!("docs/writing-plugins.md has no ```{lang} block starting with {start:?}"))
        .to_string()
}

#[test]
fn the_plugin_guide_builds_boots_and_shows_its_node() {
    let Some(gcc) = which("riscv64-unknown-elf-gcc") else {
        eprintln!("skipped: riscv64-unknown-elf-gcc is not installed (scripts/install-deps.sh)");
        return;
    };
    let doc = std::fs::read_to_string(root().join("docs/writing-plugins.md")).unwrap();
    let dir = scratch("guide");

    // The plugin crate, depending on this checkout's plugin-api.
    let crate_dir = dir.join("my-device");
    std::fs::create_dir_all(crate_dir.join("src")).unwrap();
    let api = format!("path = \"{}\"", root().join("plugin-api").display());
    let manifest = block(&doc, "toml", "# Cargo.toml").replace("path = \"../vmhost/plugin-api\"", &api);
    assert!(manifest.contains(&api), "the guide's dependency line changed:\n{manifest}");
    std::fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(crate_dir.join("src/lib.rs"), block(&doc, "rust", "use serde::Deserialize;")).unwrap();
    std::fs::copy(root().join("Cargo.lock"), crate_dir.join("Cargo.lock")).unwrap();
    // Where the guide's vm.toml looks: its `[plugins] path`.
    build_plugin_crate(&crate_dir, &crate_dir.join("target/release"));

    // The guest, compiled with the guide's command line, in a folder beside the crate.
    let test_dir = dir.join("test");
    std::fs::create_dir_all(&test_dir).unwrap();
    std::fs::write(test_dir.join("mydev-test.c"), block(&doc, "c", "/* mydev-test.c */")).unwrap();
    let guests = format!("{}/guests/", root().display());
    let command =
        block(&doc, "sh", "riscv64-unknown-elf-gcc").replace("\\\n", " ").replace("guests/", &guests);
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let out = Command::new(gcc).current_dir(&test_dir).args(&args).output().unwrap();
    assert!(out.status.success(), "{command}\n{}", String::from_utf8_lossy(&out.stderr));

    // The guide's vm.toml finds the plugin through its [plugins] path.
    let toml = test_dir.join("vm.toml");
    std::fs::write(&toml, block(&doc, "toml", "[machine]")).unwrap();
    let out = run(&vmhost(), &["run", toml.to_str().unwrap()], &[]);
    assert_eq!(
        stdout(&out).replace('\r', ""),
        "reg 7\n",
        "reset_value from [device.config]: {}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let dtb = test_dir.join("out.dtb");
    let out = run(&vmhost(), &["dumpdtb", toml.to_str().unwrap(), dtb.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let Some(dtc) = which("dtc") else {
        eprintln!("skipped the device-tree check: dtc is not installed (scripts/install-deps.sh)");
        return;
    };
    let dts = Command::new(dtc).args(["-I", "dtb", "-O", "dts"]).arg(&dtb).output().unwrap();
    let dts = String::from_utf8_lossy(&dts.stdout);
    assert!(dts.contains("mydev@10002000 {"), "{dts}");
    assert!(dts.contains("compatible = \"me,mydev\";"), "{dts}");
    assert!(dts.contains("reg = <0x00 0x10002000 0x00 0x10>;"), "{dts}");
    // irq = 11 in the guide's vm.toml: the host wires it to the PLIC.
    let node = &dts[dts.find("mydev@10002000 {").unwrap()..];
    let node = &node[..node.find("};").unwrap()];
    assert!(node.contains("interrupts = <0x0b>;") && node.contains("interrupt-parent = <"), "{node}");
}
