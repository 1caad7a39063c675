fn main() {
    eprintln!("flexus-emulator: not built yet");
    std::process::exit(2);
}
