//! `cargo xtask bench | fuzz | ci`.
fn main() {
    eprintln!("xtask: not implemented yet");
    std::process::exit(2);
}
