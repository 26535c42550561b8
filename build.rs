//! Links Sluice's binaries as position-dependent executables (`-no-pie`).
//!
//! As a PIE, the 180 MB `sluice` binary carries about 250,000 relative relocations, which the
//! loader applies at every start by writing 4 MB of `.data.rel.ro`: `sluice --version` took
//! 6-7 ms against 2.2 ms without PIE, and that was a third of a cold start. The trade is
//! address-space layout randomisation of the executable's own image (shared libraries, heap
//! and stacks stay randomised); Go links its binaries the same way by default.
//!
//! Only this package's binaries get the flag (`rustc-link-arg-bins`): a `RUSTFLAGS` setting
//! would also reach proc-macro libraries, which cannot link without PIC. Only Linux targets
//! get it: it is a flag of the GNU toolchain's `cc` driver, which macOS's linker refuses.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
