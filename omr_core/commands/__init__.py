"""One module per `omr` verb: each defines VERB, HELP, add_arguments(parser) and run(args) -> int."""
