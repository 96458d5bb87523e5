"""The command implementations behind `heliod COMMAND`; daemon/cli.py parses and dispatches."""
