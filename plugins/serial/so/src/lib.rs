//! The serial device exported as `libvmhost_serial.so`.
vm_plugin_api::export_plugin!(vm_serial::module());
