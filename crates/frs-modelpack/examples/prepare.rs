//! `cargo run -p frs-modelpack --example prepare -- SOURCE_DIR OUTPUT_DIR [LIBONNXRUNTIME]`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, output, rest @ ..] = args.as_slice() else {
        return Err("usage: prepare SOURCE_DIR OUTPUT_DIR [LIBONNXRUNTIME]".into());
    };
    let options = frs_modelpack::PrepareOptions {
        source_dir: source.into(),
        output_dir: output.into(),
        onnxruntime: rest.first().map(Into::into),
        force: std::env::var_os("FORCE").is_some(),
    };
    let report = frs_modelpack::prepare(&options)?;
    println!("{report:#?}");
    Ok(())
}
