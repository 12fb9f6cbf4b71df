fn main() -> std::process::ExitCode {
    scancer::main()
}
