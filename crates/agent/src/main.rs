fn main() {
    eprintln!("flexus-agent: not built yet");
    std::process::exit(2);
}
