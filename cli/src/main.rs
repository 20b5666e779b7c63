fn main() {
    // Output piped into `head` and the like ends the process quietly, as for other command-line
    // tools, instead of a panic on the closed pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(d365meta_cli::main());
}
