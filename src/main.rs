use std::process::ExitCode;

fn main() -> ExitCode {
    // Docker runs this before every plugin call and for every `docker --help`: answer before any
    // runtime, logger or config exists, so it costs no more than a process start.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == docker_euca::plugin::METADATA_COMMAND)
    {
        println!("{}", docker_euca::plugin::METADATA);
        return ExitCode::SUCCESS;
    }
    docker_euca::run()
}
