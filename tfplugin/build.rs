//! Compiles `proto/tfplugin6/*.proto` into Rust with protox (pure Rust, so no `protoc` is
//! needed on any machine) and tonic-prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/tfplugin6");
    let files = [
        proto_dir.join("tfplugin6.proto"),
        proto_dir.join("plugin.proto"),
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&proto_dir])?;
    tonic_prost_build::configure()
        .build_server(true)
        // Clients serve this crate's own end-to-end tests; they are generic over the
        // transport, so no tonic transport feature is needed.
        .build_client(true)
        .build_transport(false)
        // RPCs this crate does not implement answer `Unimplemented`, which Terraform
        // tolerates for optional RPCs.
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
