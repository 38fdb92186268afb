import MirrordCLI

/// The process's entry point: the `mirrord` command, whose flags and subcommands MirrordCLI declares.
@main extension MirrordCommand {}
