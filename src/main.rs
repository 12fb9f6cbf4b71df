fn main() -> std::process::ExitCode {
    scancer::commands::main()
}
