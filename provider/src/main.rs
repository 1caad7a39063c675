//! `terraform-provider-flexus`: started by Terraform (plugin protocol 6). `--debug` runs it
//! standalone and prints `TF_REATTACH_PROVIDERS`; `docs <dir>` writes the registry docs;
//! `version` prints the provider version (what `make install` and `make release` name
//! the files after).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("version") {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return std::process::ExitCode::SUCCESS;
    }
    if args.first().map(String::as_str) == Some("docs") {
        let dir = args.get(1).map(String::as_str).unwrap_or("docs");
        return match terraform_provider_flexus::docs::write_all(std::path::Path::new(dir)) {
            Ok(files) => {
                for f in files {
                    eprintln!("wrote {}", f.display());
                }
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot write the docs: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    tfplugin::run(terraform_provider_flexus::FlexusProvider)
}
