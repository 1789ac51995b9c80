//! Generates the ONNX protobuf types from the vendored proto/onnx/onnx.proto
//! with a vendored protoc, so nothing is downloaded at build time.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../proto/onnx/onnx.proto";
    println!("cargo:rerun-if-changed={proto}");
    prost_build::Config::new()
        .protoc_executable(protoc_bin_vendored::protoc_bin_path()?)
        .compile_protos(&[proto], &["../../proto/onnx"])?;
    Ok(())
}
