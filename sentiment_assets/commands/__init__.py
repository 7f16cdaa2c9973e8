"""The `sentiment` subcommands, one module each; cli.py parses the arguments and calls them."""
