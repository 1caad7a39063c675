fn main() {
    eprintln!("terraform-provider-flexus: not built yet");
    std::process::exit(2);
}
