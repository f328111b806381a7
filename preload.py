# Command-line options of the extension; the WebUI calls preload(parser) with
# its argparse parser before it parses the command line.

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def preload(parser):
    parser.add_argument(
        "--animatediff-loglevel",
        type=str.upper,  # accept "debug" as well as "DEBUG"
        choices=LOG_LEVELS,
        default="INFO",
        help="Log level of the AnimateDiff extension (default: INFO).",
    )
