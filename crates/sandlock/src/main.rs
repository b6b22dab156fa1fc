//! The `sandlock` command-line tool.
fn main() {
    eprintln!("sandlock: the command-line tool is not implemented yet");
    std::process::exit(125);
}
