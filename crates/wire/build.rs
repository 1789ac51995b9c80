//! Generates the gRPC code from proto/ppdnn/v1/ppdnn.proto with a vendored
//! protoc, so nothing is downloaded at build time.

#![allow(unsafe_code)] // std::env::set_var below, in a single-threaded build script

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; the variable only tells the
    // code generator where protoc is.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let proto = "../../proto/ppdnn/v1/ppdnn.proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure().build_transport(false).compile_protos(&[proto], &["../../proto"])?;
    Ok(())
}
