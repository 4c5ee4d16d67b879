//! The interp engine exported as `libvmhost_interp.so`.
vm_plugin_api::export_plugin!(vm_interp::module());
