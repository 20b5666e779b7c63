fn main() {
    std::process::exit(d365meta::cli::main());
}
